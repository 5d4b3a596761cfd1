"""Going on without Redis: this host's own state while the shared store is unreachable.

With ``store_backend: redis`` every lookup reads and writes Redis (result cache, token cache, locks,
the rate-limit log). When Redis stops answering (killed, restarted, the network in between gone),
``store_unavailable`` decides:

- ``fail``: every lookup that needs the store fails as ``unavailable`` before any API call (the
  behaviour before this module: the stores raise UnavailableError).
- ``local`` (the default): each operation Redis fails is done on the host's own SQLite state instead
  (state.sqlite3 and ratelimit.sqlite3 in the state directory, as with ``store_backend: sqlite``), and
  every lookup that touched it says so: ``degraded: true`` and a warning naming the reason.

While Redis is down a process does not ask it on every operation: one health record per Redis URL
and process (``RedisHealth``) marks it down for ``store_retry_s``; the first operation after that
becomes the probe (one caller, the others stay local), and the first operation Redis answers brings
the whole process back to it. What this costs, written down in docs/reliability.md: while degraded,
each host's gate counts only the calls made on that host since the switch, so a cluster (or a host
switching in the middle of a full window) can overrun Defender's limit; Defender's 429 and its
Retry-After (the shared pause, kept locally) absorb that. Answers cached and tokens fetched while
degraded stay on the host.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from connector.errors import ConfigurationError, UnavailableError
from connector.lanes import DEFAULT_LANE, Lane
from connector.settings import Settings
from connector.state import Change, StateStore, update
from connector.stores import STATE_FILE, SqliteStateStore, open_state_store

if TYPE_CHECKING:
    from connector.ratelimit import RateGate

log = logging.getLogger(__name__)

T = TypeVar("T")

_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("degraded_notes", default=None)


@contextmanager
def noting_degradation() -> Iterator[list[str]]:
    """Collect, for the code run inside (one lookup), why shared state was replaced by local state."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def _note(reason: str) -> None:
    notes = _NOTES.get()
    if notes is not None and reason not in notes:
        notes.append(reason)


class RedisHealth:
    """Whether this process should ask Redis now: shared by every store and gate of one Redis URL."""

    def __init__(self, retry_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_s = retry_s
        self._clock = clock
        self._guard = threading.Lock()
        self._down_until: float | None = None
        self.reason = ""

    @property
    def down(self) -> bool:
        return self._down_until is not None

    def claim(self) -> bool:
        """True when the caller should ask Redis: it is up, or a retry is due and this caller won it
        (the next retry is then scheduled at once, so only one caller per interval probes)."""
        with self._guard:
            if self._down_until is None:
                return True
            now = self._clock()
            if now < self._down_until:
                return False
            self._down_until = now + self.retry_s
            return True

    def failed(self, reason: str) -> None:
        with self._guard:
            if self._down_until is None:
                log.warning("%s; going on with this host's own state, trying Redis again every %g s",
                            reason, self.retry_s)
            self._down_until = self._clock() + self.retry_s
            self.reason = reason

    def answered(self) -> None:
        if self._down_until is None:
            return
        with self._guard:
            if self._down_until is not None:
                log.warning("Redis answers again; shared state is back in use")
            self._down_until = None


_HEALTH: dict[str, RedisHealth] = {}
_HEALTH_GUARD = threading.Lock()


def redis_health(url: str, retry_s: float) -> RedisHealth:
    """The process's health record for url (one per URL, whatever the number of stores and gates)."""
    with _HEALTH_GUARD:
        health = _HEALTH.setdefault(url, RedisHealth(retry_s))
        health.retry_s = retry_s
        return health


class _Failover:
    """Run an operation on the primary while it answers; otherwise on the local stand-in, noted."""

    def __init__(self, health: RedisHealth, local: Callable[[], T]) -> None:
        self._health = health
        self._make_local = local

    @cached_property
    def _local(self) -> object:
        return self._make_local()

    def _either(self, primary: Callable[[], T], local: Callable[[], T]) -> T:
        if self._health.claim():
            try:
                value = primary()
            except ConfigurationError:
                raise  # a wrong password is no outage: say so, do not hide it behind local state
            except UnavailableError as exc:
                self._health.failed(exc.message)
            else:
                self._health.answered()
                return value
        _note(self._reason())
        return local()

    def _reason(self) -> str:
        return (f"{self._health.reason.rstrip('.')}. This answer used this host's own state instead "
                "(degraded: the result cache, tokens and rate-limit log are not shared meanwhile).")


class FailoverStore(_Failover):
    """A StateStore on Redis that falls back to this host's SQLite store while Redis is unreachable."""

    def __init__(self, primary: StateStore, local: Callable[[], StateStore], health: RedisHealth) -> None:
        super().__init__(health, local)
        self.primary = primary

    @property
    def local(self) -> StateStore:
        store: StateStore = self._local  # type: ignore[assignment]
        return store

    def get(self, key: str) -> bytes | None:
        return self._either(lambda: self.primary.get(key), lambda: self.local.get(key))

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._either(lambda: self.primary.set(key, value, ttl_s), lambda: self.local.set(key, value, ttl_s))

    def delete(self, key: str) -> None:
        self._either(lambda: self.primary.delete(key), lambda: self.local.delete(key))

    def update(self, key: str, change: Change[T], ttl_s: float | None = None) -> T:
        """One atomic read-change-write (connector.state.update) on Redis, or on the local store."""
        return self._either(lambda: update(self.primary, key, change, ttl_s),
                            lambda: update(self.local, key, change, ttl_s))

    def lock(self, name: str, timeout_s: float) -> AbstractContextManager[bool]:
        return self._lock(name, timeout_s)

    @contextmanager
    def _lock(self, name: str, timeout_s: float) -> Iterator[bool]:
        # Entering the lock is what talks to the store; the body runs outside the fallback, so that an
        # error inside it is never taken for a Redis outage.
        with ExitStack() as stack:
            acquired = self._either(lambda: stack.enter_context(self.primary.lock(name, timeout_s)),
                                    lambda: stack.enter_context(self.local.lock(name, timeout_s)))
            yield acquired

    def close(self) -> None:
        local = self.__dict__.get("_local")
        closer = getattr(local, "close", None)
        if callable(closer):
            closer()


class FailoverGate(_Failover):
    """The rate gate on Redis, or this host's SQLite gate while Redis is unreachable."""

    def __init__(self, primary: RateGate, local: Callable[[], RateGate], health: RedisHealth) -> None:
        super().__init__(health, local)
        self.primary = primary

    @property
    def local(self) -> RateGate:
        gate: RateGate = self._local  # type: ignore[assignment]
        return gate

    def acquire(self, deadline: float, lane: Lane = DEFAULT_LANE) -> float:
        return self._either(lambda: self.primary.acquire(deadline, lane), lambda: self.local.acquire(deadline, lane))

    def pause(self, seconds: float) -> None:
        self._either(lambda: self.primary.pause(seconds), lambda: self.local.pause(seconds))


def _local_fallback(settings: Settings) -> bool:
    return settings.store_backend == "redis" and settings.store_unavailable == "local"


def _health(settings: Settings) -> RedisHealth:
    assert settings.store_url is not None  # Settings validation guarantees it with store_backend redis
    return redis_health(settings.store_url.get_secret_value(), settings.store_retry_s)


def open_shared_store(settings: Settings, state_dir: Path) -> StateStore:
    """The store settings name; on Redis with store_unavailable local, one that falls back to SQLite."""
    store = open_state_store(settings, state_dir)
    if not _local_fallback(settings):
        return store
    return FailoverStore(store, lambda: SqliteStateStore(Path(state_dir).expanduser() / STATE_FILE),
                         _health(settings))


def open_shared_gate(settings: Settings, state_dir: Path) -> RateGate:
    """The rate gate settings name; on Redis with store_unavailable local, one that falls back to the
    host's SQLite gate (the one store_backend sqlite would use)."""
    from connector.ratelimit import open_rate_gate

    gate = open_rate_gate(settings, state_dir)
    if not _local_fallback(settings):
        return gate
    local = settings.replace(store_backend="sqlite")
    return FailoverGate(gate, lambda: open_rate_gate(local, state_dir), _health(settings))
