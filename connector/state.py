"""Where the connector keeps what must outlive one action run.

Each SOAR action usually runs in a fresh process, so the MSAL token cache, the result cache and the
single-flight locks live in a store shared by every process of the same connector instance. The
interface is deliberately tiny (bytes in, bytes out, a named lock) so that a platform adapter can
back it with whatever persistence the platform offers (Splunk SOAR's asset state, a SQLite file, Redis).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar, runtime_checkable

_T = TypeVar("_T")

Change = Callable[[bytes | None, float], tuple[bytes | None, _T]]
"""A read-modify-write of one key: given the value there (None: absent or expired) and now on the
store's own clock (seconds), the value to leave there (None: none) and what to answer the caller."""


@runtime_checkable
class StateStore(Protocol):
    """A small shared key-value store with expiry and named locks."""

    def get(self, key: str) -> bytes | None:
        """The value stored under key, or None when absent or expired."""
        ...

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store value under key; it expires after ttl_s seconds when given."""
        ...

    def delete(self, key: str) -> None: ...

    def lock(self, name: str, timeout_s: float) -> AbstractContextManager[bool]:
        """Hold a lock shared by every user of the store; yields False if not acquired in time."""
        ...


@runtime_checkable
class UpdatingStore(Protocol):
    """A store that can read, change and write one key as one step for every process sharing it."""

    def update(self, key: str, change: Change[_T], ttl_s: float | None = None) -> _T:
        """Apply change to key atomically (its clock: the one the store's expiries run on); the new value
        expires after ttl_s seconds when given. Answers what change answered."""
        ...


UPDATE_LOCK_TIMEOUT_S = 5.0


def update(store: StateStore, key: str, change: Change[_T], ttl_s: float | None = None) -> _T:
    """Read, change and write one key as one step for everyone sharing the store: the store's own atomic
    update where it has one (memory, SQLite, Redis), otherwise (a platform's own store) under the store's
    named lock, on the wall clock. When that lock cannot be had in time the change is answered but not
    written: a caller of update() must treat its state as advice, never as the only guard."""
    if isinstance(store, UpdatingStore):
        return store.update(key, change, ttl_s)
    with store.lock(f"update:{key}", UPDATE_LOCK_TIMEOUT_S) as held:
        new, answer = change(store.get(key), time.time())
        if held:
            if new is None:
                store.delete(key)
            else:
                store.set(key, new, ttl_s)
        return answer


class ProcessLocks:
    """Named locks within one process: enough for a store whose users all live in that process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def lock(self, name: str, timeout_s: float) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        acquired = lock.acquire(timeout=max(timeout_s, 0.0))
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()


class MemoryStateStore:
    """A process-local store: for tests, one-shot CLI runs without persistence, and platforms
    whose own state object is handed in and saved by the adapter afterwards."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._guard = threading.Lock()
        self._locks = ProcessLocks()

    def get(self, key: str) -> bytes | None:
        with self._guard:
            entry = self._values.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if expires_at is not None and expires_at <= time.monotonic():
                del self._values[key]
                return None
            return value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        expires_at = None if ttl_s is None else time.monotonic() + ttl_s
        with self._guard:
            self._values[key] = (value, expires_at)

    def delete(self, key: str) -> None:
        with self._guard:
            self._values.pop(key, None)

    def update(self, key: str, change: Change[_T], ttl_s: float | None = None) -> _T:
        with self._guard:
            now = time.monotonic()
            entry = self._values.get(key)
            current = entry[0] if entry is not None and (entry[1] is None or entry[1] > now) else None
            new, answer = change(current, now)
            if new is None:
                self._values.pop(key, None)
            else:
                self._values[key] = (new, None if ttl_s is None else now + ttl_s)
            return answer

    def lock(self, name: str, timeout_s: float) -> AbstractContextManager[bool]:
        return self._locks.lock(name, timeout_s)
