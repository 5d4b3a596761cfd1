"""The core's StateStore over the SDK's asset state, and state persistence for local runner runs.

Inside SOAR, `asset.auth_state` is a part of the asset's state file that the SDK encrypts at rest;
the MSAL token cache (application token, or the signed-in analyst's tokens and a pending device-code
sign-in) lives there, so consecutive action runs on one asset reuse one sign-in. Values are bytes in
the core and base64 text in the state mapping.

Action runs on one asset may overlap (a playbook's lookups while the analyst completes a sign-in),
and the SDK saves a state part whole. So a run writes only if it changed something, and then applies
its own changes to the state as it is on disk at that moment (the SDK's ``force_reload``), instead of
writing back the copy it read when it started: a lookup that only read the token cannot undo a
sign-in that finished meanwhile.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from connector.state import ProcessLocks

_VALUE = "v"
_EXPIRES = "e"
_DELETED = object()


class AssetStateStore:
    """connector.state.StateStore over one SDK AssetState mapping.

    Within `session()` reads and writes go to an in-memory copy, so an action run that touches the
    store many times decrypts the state once and encrypts it at most once. Locks are process-local:
    each SOAR action run is its own process, and the state file has no cross-process lock to offer.
    """

    def __init__(self, state: MutableMapping[str, Any], clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._clock = clock
        self._guard = threading.RLock()
        self._locks = ProcessLocks()
        self._changes: dict[str, Any] | None = None

    @contextmanager
    def session(self) -> Iterator[AssetStateStore]:
        """Buffer the action run's reads and writes; at the end, save only what this run changed,
        onto the state as saved meanwhile (expired entries dropped); nothing at all if it changed nothing."""
        begin = getattr(self._state, "begin_transaction", None)
        if begin is None:
            yield self
            return
        begin()
        self._changes = {}
        try:
            yield self
        except BaseException:
            self._changes = None
            self._state.rollback()  # type: ignore[attr-defined]
            raise
        with self._guard:
            changes, self._changes = self._changes, None
            self._state.rollback()  # type: ignore[attr-defined]  # the buffer is what was read at the start
            if not changes:
                return
            current = self._state.get_all(force_reload=True)  # type: ignore[attr-defined]
            for key, entry in changes.items():
                if entry is _DELETED:
                    current.pop(key, None)
                else:
                    current[key] = entry
            now = self._clock()
            self._state.put_all({k: v for k, v in current.items() if not _expired(v, now)})  # type: ignore[attr-defined]

    def _live_entry(self, key: str) -> dict[str, Any] | None:
        entry = self._state.get(key)
        if not isinstance(entry, dict) or _VALUE not in entry:
            return None
        expires_at = entry.get(_EXPIRES)
        if expires_at is not None and expires_at <= self._clock():
            return None
        return entry

    def get(self, key: str) -> bytes | None:
        with self._guard:
            entry = self._live_entry(key)
            if entry is None:
                return None
            try:
                return base64.b64decode(entry[_VALUE], validate=True)
            except (ValueError, TypeError):
                return None

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        expires_at = None if ttl_s is None else self._clock() + ttl_s
        entry = {_VALUE: base64.b64encode(value).decode("ascii"), _EXPIRES: expires_at}
        with self._guard:
            self._state[key] = entry
            if self._changes is not None:
                self._changes[key] = entry

    def delete(self, key: str) -> None:
        with self._guard:
            if key in self._state:
                del self._state[key]
            if self._changes is not None:
                self._changes[key] = _DELETED

    def lock(self, name: str, timeout_s: float) -> AbstractContextManager[bool]:
        return self._locks.lock(name, timeout_s)


def _expired(entry: Any, now: float) -> bool:
    return isinstance(entry, dict) and entry.get(_EXPIRES) is not None and entry[_EXPIRES] <= now


# --- local runs ------------------------------------------------------------------------------------
# Outside SOAR the SDK's stand-in BaseConnector keeps the asset state in memory only and its runner
# invents a new asset id for every run, so nothing would outlive one run. The app therefore gives
# local runs a stable asset id and keeps the (SDK-encoded) state dictionary in a file per asset,
# the way the platform keeps `<asset id>_state.json`. The SDK's stand-in "encryption" is only
# base64: the directory is created private (0700) and the file 0600.

LOCAL_STATE_DIR_ENV = "MDE_SOAR_STATE_DIR"
LOCAL_ASSET_ID_ENV = "MDE_SOAR_ASSET_ID"
DEFAULT_LOCAL_STATE_DIR = ".state/splunk_soar"
DEFAULT_LOCAL_ASSET_ID = "1"


def local_asset_id() -> str:
    return os.environ.get(LOCAL_ASSET_ID_ENV) or DEFAULT_LOCAL_ASSET_ID


def local_state_dir() -> Path:
    return Path(os.environ.get(LOCAL_STATE_DIR_ENV) or DEFAULT_LOCAL_STATE_DIR).expanduser()


def local_state_file(asset_id: str) -> Path:
    return local_state_dir() / f"{asset_id}_state.json"


def load_local_state(asset_id: str) -> dict[str, Any]:
    path = local_state_file(asset_id)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_local_state(asset_id: str, state: dict[str, Any]) -> None:
    path = local_state_file(asset_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        Path(tmp).chmod(0o600)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
