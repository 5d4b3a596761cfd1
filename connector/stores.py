"""Shared state stores: an embedded SQLite file for one host, Redis for a cluster.

Both implement connector.state.StateStore. Values expire by wall-clock time (SQLite) or by Redis's
own expiry, so that every process sharing the store agrees on what is fresh. Locks are *leases*: a
holder that crashes cannot block the others for longer than the lease, while a live holder keeps
its lease renewed for as long as it needs (a single-flight fetch may wait minutes for a rate-limit
slot). On SQLite a waiter also steals at once a lease whose holder process is gone (a PID of its own
host, boot and PID namespace: containers sharing a host name and the state volume do not share PIDs),
and a lease that ends further ahead than any lease could (the host's clock stepped back) counts as
taken now (connector.clock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from connector.clock import WallClock, boot_id, stepped_back
from connector.errors import ConfigurationError, UnavailableError
from connector.settings import Settings
from connector.state import Change, MemoryStateStore, StateStore
from connector.state_files import (
    NoRoomError,
    SetsAsideDamage,
    check_schema_version,
    disk_full_notice,
    inode,
    is_damage,
    is_full,
    refuse_planted,
    refuse_unwritable,
    set_aside_orphans,
)

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
"""How long a lock survives its holder without renewal (a crashed holder blocks no longer)."""

_T = TypeVar("_T")

_POLL_FIRST_S = 0.002
_POLL_MAX_S = 0.025
_UPDATE_TRIES = 50
"""A Redis update retried this often when other writers keep changing the key under it."""


def process_space() -> str:
    """Where this process's PID means something, as a lock records it beside the PID: the host name,
    and on Linux the boot and the PID namespace. Containers can share a host name and a state volume
    but not their PIDs: a PID of another namespace, dead here, may be a live holder there."""
    host = socket.gethostname()
    boot = boot_id()
    try:
        namespace = Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        namespace = None
    if boot is None or namespace is None:  # not Linux, or no /proc: the host name alone
        return host
    return f"{host}|{boot}|pid:{namespace}"


_SPACE: tuple[int, str] | None = None


def _own_space() -> str:
    """process_space() of this process, worked out again after a fork (the child may be in a new namespace)."""
    global _SPACE
    if _SPACE is None or _SPACE[0] != os.getpid():
        _SPACE = (os.getpid(), process_space())
    return _SPACE[1]


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One BEGIN IMMEDIATE transaction (the write lock is taken up front, so no upgrade deadlock),
    rolled back on any error, a failed COMMIT included: SQLite keeps a transaction open after a busy
    COMMIT, and with it the lock every other process of the host would wait for."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _poll_delays(deadline: float) -> Iterator[float]:
    """Back-off delays for lock waiters: fast at first, never longer than _POLL_MAX_S, bounded."""
    delay = _POLL_FIRST_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        yield min(delay, remaining)
        delay = min(delay * 2, _POLL_MAX_S)


def _acquire_polling(try_once: Callable[[], bool], timeout_s: float) -> bool:
    """Try once, then again with back-off until timeout_s has passed: the lock wait of both stores."""
    if try_once():
        return True
    for delay in _poll_delays(time.monotonic() + max(timeout_s, 0.0)):
        time.sleep(delay)
        if try_once():
            return True
    return False


class _Renewals:
    """One daemon thread per process that keeps every lease this process holds from expiring.

    A thread per held lock would cost more than the lock itself (a single-flight lookup takes two),
    so holders register a renew callback here and unregister on release.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, float, Callable[[], bool]]] = {}
        self._next_token = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, renew: Callable[[], bool], lease_s: float) -> int:
        interval = lease_s / 3
        with self._cond:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()  # after a fork the parent's thread does not exist here
                self._due.clear()
                self._thread = threading.Thread(target=self._run, name="state-lease-renewer", daemon=True)
                self._thread.start()
            self._next_token += 1
            self._due[self._next_token] = (time.monotonic() + interval, interval, renew)
            self._cond.notify()
            return self._next_token

    def remove(self, token: int) -> None:
        with self._cond:
            self._due.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                soonest = min((due for due, _, _ in self._due.values()), default=now + 3600.0)
                if soonest > now:
                    self._cond.wait(soonest - now)
                    continue
                ready = [(token, interval, renew) for token, (due, interval, renew) in self._due.items()
                         if due <= now]
                for token, interval, renew in ready:
                    self._due[token] = (now + interval, interval, renew)
            for token, _, renew in ready:
                try:
                    still_held = renew()
                except Exception:
                    log.debug("lease renewal failed; retrying at the next tick", exc_info=True)
                    continue
                if not still_held:
                    self.remove(token)  # the lease was lost (it lapsed and was taken): stop renewing


_RENEWALS = _Renewals()


@contextmanager
def _renewed(renew: Callable[[], bool], lease_s: float) -> Iterator[None]:
    token = _RENEWALS.add(renew, lease_s)
    try:
        yield
    finally:
        _RENEWALS.remove(token)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def private_dir(path: Path) -> Path:
    """Create path (mode 0700) if missing; an existing directory is left as its owner set it."""
    path = path.expanduser()
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create path with mode 0600 if missing, and narrow it to 0600 if it is wider. A symlink, a file of
    another user's or an unwritable directory is refused first (connector.state_files), by name."""
    refuse_planted(path)
    if not path.exists():
        refuse_unwritable(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """SQLite failures in the connector's vocabulary: the state file is a local dependency like any other."""
    try:
        yield
    except sqlite3.Error as exc:
        raise UnavailableError(
            f"The connector's state file {path} could not be used ({type(exc).__name__}: {exc}); check the "
            "disk and that no other program holds the file") from None


_SQLITE_READY: set[tuple[int, str]] = set()
"""Files this process has already set up (WAL mode and schema persist in the file)."""


class SqliteStateStore(SetsAsideDamage):
    """A StateStore in one SQLite file (WAL), shared safely by every process on the host.

    The file is created 0600 inside a 0700 directory: it holds the MSAL token cache. Writes are short
    transactions; SQLite's own file locking serialises them across processes. A damaged file, or one of
    another schema version, is set aside and replaced by a fresh one the moment an operation finds it
    (connector.state_files); the operation is then done again on the fresh file, and take_notices()
    says what happened, once.
    """

    SCHEMA_VERSION = 1
    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)",
        "CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at)",
        "CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL,"
        " pid INTEGER NOT NULL, expires_at REAL NOT NULL)",
        f"PRAGMA user_version = {SCHEMA_VERSION}",
    )
    _PURGE_EVERY_S = 60.0

    def __init__(self, path: Path, *, lease_s: float = DEFAULT_LEASE_S, clock: WallClock = time.time) -> None:
        self.path = Path(path)
        self._lease_s = lease_s
        self._clock = clock
        self._last_purge = 0.0
        self._guard = threading.RLock()
        self._notices: list[str] = []
        self._full = False
        try:
            self._do(self._open, opening=True)
        except ConfigurationError:
            raise
        except (OSError, UnavailableError) as exc:
            if self._full or is_full(exc):
                raise NoRoomError(disk_full_notice(self.path, "this process keeps no state there")) from None
            raise ConfigurationError(
                f"Cannot keep state in {self.path} ({type(exc).__name__}: {exc}); "
                "choose a writable state directory") from None

    def _open(self) -> None:
        ready = (os.getpid(), str(self.path.absolute()))
        refuse_planted(self.path)
        if not self.path.exists():
            _SQLITE_READY.discard(ready)  # deleted since: set it up afresh
            private_dir(self.path.parent)
            orphans = set_aside_orphans(self.path)
            if orphans:
                self._notices.append(orphans)
        if ready not in _SQLITE_READY:
            private_dir(self.path.parent)
            private_file(self.path)
        self._inode = inode(self.path)
        self._conn: sqlite3.Connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                                          check_same_thread=False)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        if ready not in _SQLITE_READY:
            if not self._set_up_already():
                self._switch_to_wal()
                with self._write() as conn:
                    for statement in self._SCHEMA:
                        conn.execute(statement)
            _SQLITE_READY.add(ready)

    def _keep(self, operation: Callable[[], _T], otherwise: _T) -> _T:
        """A write the connector can do without (a cached token or answer, a lock): when the disk is full,
        it is skipped, the lookup goes on without it, and take_notices() says so, once per lookup."""
        try:
            return self._do(operation)
        except UnavailableError:
            if not self._full:
                raise
            self._full = False
            notice = disk_full_notice(self.path, "answers and tokens are not cached, and lookups of the same IP "
                                                 "in different processes are not merged, until there is room")
            log.warning("%s", notice)
            if notice not in self._notices:
                self._notices.append(notice)
            return otherwise

    def _do(self, operation: Callable[[], _T], *, opening: bool = False) -> _T:
        with sqlite_errors(self.path), self._guard:
            return self._recovering(operation, opening=opening)

    def _state_path(self) -> Path:
        return self.path

    def _reopening(self, notice: str | None) -> None:
        super()._reopening(notice)
        _SQLITE_READY.discard((os.getpid(), str(self.path.absolute())))  # whoever made the new file sets it up

    def _switch_to_wal(self, timeout_s: float = 2.0) -> None:
        """Switching to WAL needs the file to itself, and SQLite refuses at once (no busy wait) while
        another process is in it, by an error or by leaving the mode as it was: retry, briefly, until
        this process's switch or another's has taken (the mode is kept in the file). A file system
        that never allows WAL keeps refusing: the store then carries on in rollback-journal mode,
        slower but as atomic, rather than fail."""
        delays = _poll_delays(time.monotonic() + timeout_s)
        while True:
            try:
                if str(self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                    return
            except sqlite3.OperationalError as exc:
                if is_damage(exc):
                    raise
            delay = next(delays, None)
            if delay is None:
                log.info("%s stays in rollback-journal mode: SQLite would not switch it to WAL", self.path)
                return
            time.sleep(delay)

    def _set_up_already(self) -> bool:
        """A file an earlier process set up (WAL on, every table and index there) needs no set-up:
        the usual case for a fresh action process, which then opens the store with three reads."""
        check_schema_version(self._conn, self.SCHEMA_VERSION, self.path)
        mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        found = self._conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('kv', 'kv_expires', 'locks')").fetchone()[0]
        return str(mode).lower() == "wal" and found == 3

    def close(self) -> None:
        with self._guard:
            self._conn.close()

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._guard, immediate_transaction(self._conn) as conn:
            yield conn

    def get(self, key: str) -> bytes | None:
        row = self._do(lambda: self._conn.execute("SELECT value, expires_at FROM kv WHERE key = ?",
                                                  (key,)).fetchone())
        if row is None:
            return None
        value, expires_at = row
        if expires_at is not None and expires_at <= self._clock():
            return None
        return bytes(value)

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        expires_at = None if ttl_s is None else self._clock() + ttl_s

        def write() -> None:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                    (key, value, expires_at),
                )
                self._purge_expired(conn)

        self._keep(write, None)

    def delete(self, key: str) -> None:
        def write() -> None:
            with self._write() as conn:
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))

        self._keep(write, None)

    def update(self, key: str, change: Change[_T], ttl_s: float | None = None) -> _T:
        """One transaction holding SQLite's write lock: read, change, write. On a full disk the change is
        answered from the value read, unwritten (the lookups go on; take_notices() says so)."""
        answered: list[_T] = []

        def write() -> _T:
            with self._write() as conn:
                now = self._clock()
                row = conn.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
                current = bytes(row[0]) if row is not None and (row[1] is None or row[1] > now) else None
                new, answer = change(current, now)
                answered[:] = [answer]
                if new is None:
                    conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                else:
                    conn.execute(
                        "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                        "SET value = excluded.value, expires_at = excluded.expires_at",
                        (key, new, None if ttl_s is None else now + ttl_s))
            return answer

        skipped = object()
        answer = self._keep(write, skipped)
        if answer is skipped:
            return answered[0] if answered else change(None, self._clock())[1]
        return answer  # type: ignore[return-value]

    def _purge_expired(self, conn: sqlite3.Connection) -> None:
        now_wall, now_mono = self._clock(), time.monotonic()
        if now_mono - self._last_purge >= self._PURGE_EVERY_S:
            self._last_purge = now_mono
            conn.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (now_wall,))
            conn.execute("DELETE FROM locks WHERE expires_at <= ?", (now_wall,))

    def _try_lock(self, name: str, owner: str) -> bool:
        return self._keep(lambda: self._try_lock_once(name, owner), True)

    def _try_lock_once(self, name: str, owner: str) -> bool:
        row = self._conn.execute("SELECT host, pid, expires_at FROM locks WHERE name = ?", (name,)).fetchone()
        if row is not None and not self._stale(*row) and not self._lease_stepped(row[2]):
            return False
        with self._write() as conn:
            row = conn.execute("SELECT host, pid, expires_at FROM locks WHERE name = ?", (name,)).fetchone()
            if row is not None and not self._stale(*row):
                if self._lease_stepped(row[2]):  # ends one lease from now: a live holder renews as usual
                    until = self._clock() + self._longest_lease
                    conn.execute("UPDATE locks SET expires_at = ? WHERE name = ?", (until, name))
                return False
            conn.execute(
                "INSERT OR REPLACE INTO locks (name, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)",
                (name, owner, _own_space(), os.getpid(), self._clock() + self._lease_s),
            )
        return True

    def _stale(self, space: str, pid: int, expires_at: float) -> bool:
        """Lapsed, or held by a PID of this process space that is gone (a lock recorded elsewhere, or by
        an earlier version, which recorded the host name alone, waits for its lease)."""
        if expires_at <= self._clock():
            return True
        return space == _own_space() and pid != os.getpid() and not _pid_alive(pid)

    @property
    def _longest_lease(self) -> float:
        return max(self._lease_s, DEFAULT_LEASE_S)

    def _lease_stepped(self, expires_at: float) -> bool:
        """The lease ends further ahead than any lease runs: the clock stepped back since it was taken or
        renewed, and left alone it would outlive a dead holder by the size of the step."""
        return stepped_back(expires_at, self._clock(), self._longest_lease)

    def _renew(self, name: str, owner: str) -> bool:
        def write() -> bool:
            with self._write() as conn:
                cursor = conn.execute(
                    "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?",
                    (self._clock() + self._lease_s, name, owner),
                )
                return cursor.rowcount == 1

        return self._keep(write, True)

    def _release(self, name: str, owner: str) -> None:
        def write() -> None:
            with self._write() as conn:
                conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

        self._keep(write, None)

    @contextmanager
    def lock(self, name: str, timeout_s: float) -> Iterator[bool]:
        owner = uuid.uuid4().hex
        if not _acquire_polling(lambda: self._try_lock(name, owner), timeout_s):
            yield False
            return
        try:
            with _renewed(lambda: self._renew(name, owner), self._lease_s):
                yield True
        finally:
            self._release(name, owner)


_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def redis_client(url: str) -> Any:
    """A redis.Redis for url, shared within the process (redis-py's pool is fork-safe)."""
    with _CLIENTS_GUARD:
        client = _CLIENTS.get(url)
        if client is None:
            import redis

            try:
                client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                              health_check_interval=30)
            except ValueError:
                raise ConfigurationError("store_url is not a valid Redis URL (redis://host:port/db or "
                                         "rediss://...)") from None
            _CLIENTS[url] = client
        return client


_CLIENTS: dict[str, Any] = {}
_CLIENTS_GUARD = threading.Lock()


def redis_errors(url: str) -> AbstractContextManager[None]:
    """Turn redis-py errors into the connector's vocabulary, naming the server but never the password."""
    return _redis_errors(url)


@contextmanager
def _redis_errors(url: str) -> Iterator[None]:
    import redis.exceptions as rex

    try:
        yield
    except rex.AuthenticationError:
        raise ConfigurationError(f"Redis at {_redis_location(url)} refused the credentials in store_url") from None
    except rex.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise ConfigurationError(f"Redis at {_redis_location(url)} needs a password in store_url") from None
        raise UnavailableError(f"Redis at {_redis_location(url)} answered an error ({type(exc).__name__})") from None
    except rex.RedisError as exc:
        raise UnavailableError(
            f"The shared state store (Redis at {_redis_location(url)}) is unreachable ({type(exc).__name__}); "
            "check that it is running and that store_url is right"
        ) from None


def _redis_location(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or '?'}:{port or 6379}"


class RedisStateStore:
    """A StateStore in Redis, shared by every process on every host that reaches the server.

    Keys live under one namespace. Locks are SET NX PX leases released and renewed only by their
    owner (compare-and-delete in Lua), so a late release never frees somebody else's lock.
    """

    def __init__(self, url: str, namespace: str = "mde-ipstats", *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self._url = url
        self._ns = namespace
        self._lease_s = lease_s
        self.client = redis_client(url)
        self._release_script = self.client.register_script(_RELEASE_LUA)
        self._renew_script = self.client.register_script(_RENEW_LUA)

    def key(self, key: str) -> str:
        return f"{self._ns}:kv:{key}"

    def errors(self) -> AbstractContextManager[None]:
        return redis_errors(self._url)

    def get(self, key: str) -> bytes | None:
        with self.errors():
            value = self.client.get(self.key(key))
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else max(1, round(ttl_s * 1000))
        with self.errors():
            self.client.set(self.key(key), value, px=px)

    def delete(self, key: str) -> None:
        with self.errors():
            self.client.delete(self.key(key))

    def update(self, key: str, change: Change[_T], ttl_s: float | None = None) -> _T:
        """WATCH the key, read it and the server's clock, write the change in MULTI/EXEC; another writer
        in between makes EXEC fail, and the change is worked out again on what that writer left."""
        import redis.exceptions as rex

        name = self.key(key)
        px = None if ttl_s is None else max(1, round(ttl_s * 1000))
        with self.errors(), self.client.pipeline() as pipe:
            for _ in range(_UPDATE_TRIES):
                try:
                    pipe.watch(name)
                    raw = pipe.get(name)
                    seconds, micros = pipe.time()
                    new, answer = change(None if raw is None else bytes(raw), int(seconds) + int(micros) / 1e6)
                    pipe.multi()
                    if new is None:
                        pipe.delete(name)
                    else:
                        pipe.set(name, new, px=px)
                    pipe.execute()
                    return answer
                except rex.WatchError:
                    time.sleep(random.uniform(0, _POLL_FIRST_S))
        raise UnavailableError(f"Redis at {_redis_location(self._url)} is too busy to update shared state "
                               f"({_UPDATE_TRIES} tries); try again")

    def _lock_key(self, name: str) -> str:
        return f"{self._ns}:lock:{name}"

    def _try_lock(self, key: str, owner: str) -> bool:
        with self.errors():
            return bool(self.client.set(key, owner, nx=True, px=round(self._lease_s * 1000)))

    @contextmanager
    def lock(self, name: str, timeout_s: float) -> Iterator[bool]:
        key, owner = self._lock_key(name), uuid.uuid4().hex
        if not _acquire_polling(lambda: self._try_lock(key, owner), timeout_s):
            yield False
            return
        lease_ms = round(self._lease_s * 1000)
        try:
            with _renewed(lambda: bool(self._renew_script(keys=[key], args=[owner, lease_ms])), self._lease_s):
                yield True
        finally:
            with contextlib.suppress(Exception):
                self._release_script(keys=[key], args=[owner])


_MEMORY_STORES: dict[str, MemoryStateStore] = {}
_MEMORY_GUARD = threading.Lock()


def memory_store(state_dir: Path) -> MemoryStateStore:
    """The process's in-memory store for state_dir: shared by every run in the process, never persisted."""
    with _MEMORY_GUARD:
        return _MEMORY_STORES.setdefault(str(Path(state_dir).expanduser().absolute()), MemoryStateStore())


STATE_FILE = "state.sqlite3"


class NoRoomStore(MemoryStateStore):
    """This process's store while the disk holding the state file has no room even to open it: the
    lookups go on, each fetching its token and answer afresh, and each result says why (the file
    itself is left exactly as it was)."""

    def __init__(self, notice: str) -> None:
        super().__init__()
        self._notice = notice

    def take_notices(self) -> list[str]:
        return [self._notice]


def open_state_store(settings: Settings, state_dir: Path) -> StateStore:
    """The store settings.store_backend names: sqlite (default, state_dir/state.sqlite3), redis, memory."""
    if settings.store_backend == "redis":
        assert settings.store_url is not None  # Settings validation guarantees it
        return RedisStateStore(settings.store_url.get_secret_value())
    if settings.store_backend == "memory":
        return memory_store(state_dir)
    try:
        return SqliteStateStore(Path(state_dir) / STATE_FILE)
    except NoRoomError as exc:
        log.warning("%s", exc.message)
        return NoRoomStore(exc.message)
