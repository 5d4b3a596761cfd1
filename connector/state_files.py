"""The connector's own files in the state directory: opened safely, and set aside when damaged.

Two SQLite files live there (state.sqlite3: token cache, result cache, locks, the 429 pause;
ratelimit.sqlite3: the rate-limit log). Both are caches of things the connector can do without:
a token can be fetched again, an answer asked again, a log started again. So a damaged file (a disk
error, a copy taken mid-write, a backup restored wrongly, a file another version wrote) must not stop
the connector: it is moved aside as ``<name>.corrupt-<UTC time>`` (kept for whoever wants to look),
a fresh file takes its place, and the operation that found the damage carries on, saying so.

Several processes may find the damage at once. One lock file per state file (``<name>.recover``,
an flock the kernel drops when its holder dies) lets exactly one of them move the file aside: each
remembers the inode it found damaged, and a process that gets the lock after another has moved it
finds a different inode at the path and simply reopens.

What the directory holds is checked before SQLite opens anything: a symlink planted where a state
file (or its -wal, -shm, -journal) goes, or a file owned by another user, is a configuration error
naming the path, and nothing is written through the link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from connector.errors import ConfigurationError

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SIDE_FILES = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database: they belong to that database and move with it."""

_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class OtherSchemaError(sqlite3.DatabaseError):
    """The file is a SQLite database, but not of the schema version this connector writes."""


def is_damage(exc: BaseException) -> bool:
    """Whether an SQLite error says the file itself is bad (not busy, locked, full or read-only)."""
    if isinstance(exc, OtherSchemaError):
        return True
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES


_NO_ROOM_CODES = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE})
"""SQLITE_FULL: a write found no room; SQLITE_IOERR_SHMSIZE: WAL's shared-memory file, which even a
reader needs, could not be made (its pages are written as it grows, so a full disk refuses it)."""


class NoRoomError(ConfigurationError):
    """The disk holding a state file has no room even to open it (WAL needs its -shm file to read)."""


def is_full(exc: BaseException) -> bool:
    """Whether an error says the disk (or the file's size limit) is full: nothing is wrong with the
    file, which SQLite's atomic commit keeps as it was before the failed write."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorcode", None) in _NO_ROOM_CODES


def disk_full_notice(path: Path, what: str) -> str:
    return (f"The disk holding the connector's state file {path} is full: {what}; free space there to "
            "restore it")


def check_schema_version(conn: sqlite3.Connection, version: int, path: Path) -> None:
    """Refuse a file stamped with another schema version (0 is a file from before the stamp, or new)."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found not in (0, version):
        raise OtherSchemaError(f"{path} has schema version {found}, this connector writes {version}")


def refuse_planted(path: Path) -> None:
    """A state file (or one of SQLite's side files) that is a symlink or belongs to another user is
    refused before anything opens it: writing through a link planted there would write wherever it
    points, and a file of another user's is not this installation's."""
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in SIDE_FILES)):
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            raise ConfigurationError(f"{candidate} is a symbolic link; the connector does not write its state "
                                     "through a link: remove it, or choose another state directory")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"{candidate} is not a regular file; remove it, or choose another state "
                                     "directory")
        if info.st_uid != os.geteuid():
            raise ConfigurationError(f"{candidate} belongs to user id {info.st_uid}, not to the user the connector "
                                     f"runs as ({os.geteuid()}): give it to that user, or choose another state "
                                     "directory")


def refuse_unwritable(directory: Path) -> None:
    """A state directory the connector cannot write to is a configuration error naming it."""
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(f"The state directory {directory} is not writable by the user the connector "
                                 "runs as; make it writable, or choose another state directory")


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _recovery_lock(path: Path) -> Iterator[None]:
    fd = os.open(f"{path}.recover", os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def corrupt_name(path: Path, suffix: str = "") -> Path:
    return Path(f"{path}{suffix}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")


def set_aside(path: Path, damaged_inode: int | None, why: str) -> str | None:
    """Move the damaged file at path (and its side files) aside, unless another process already has.

    damaged_inode is the inode this process found damaged; returns the warning for the result, or None
    when the file at path is no longer that one (another process moved it aside and made a new one)."""
    with _recovery_lock(path):
        if inode(path) != damaged_inode:
            return None
        target = corrupt_name(path)
        path.replace(target)
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").replace(f"{target}{suffix}")
    return (f"The connector's state file {path} was damaged ({why}); it was moved aside as {target.name} and "
            "a new one started")


def set_aside_orphans(path: Path) -> str | None:
    """A write-ahead log without its database (the database deleted or not restored) would be replayed
    into the new file SQLite creates there: it is moved aside before anything opens the path."""
    if inode(path) is not None or inode(Path(f"{path}-wal")) is None:
        return None
    with _recovery_lock(path):
        if inode(path) is not None:
            return None  # another process has moved the log aside and created the database meanwhile
        moved = []
        for suffix in ("-wal", "-shm"):
            target = corrupt_name(path, suffix)
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").replace(target)
                moved.append(target.name)
    if not moved:
        return None
    return (f"The connector's state file {path} was missing but its write-ahead log was not; the log was moved "
            f"aside as {', '.join(moved)} and a new file started")


class SetsAsideDamage:
    """What a holder of one SQLite state file (the state store, the rate gate) shares: running an
    operation so that damage found on the way sets the file aside and the operation runs again on a
    fresh one, and the notices that say so, kept until the lookup's result takes them."""

    _conn: sqlite3.Connection
    _inode: int | None
    _notices: list[str]
    _full: bool
    """Whether the last error was a full disk (see is_full)."""

    def _state_path(self) -> Path:
        raise NotImplementedError

    def _open(self) -> None:
        raise NotImplementedError

    def _reopening(self, notice: str | None) -> None:
        """Called before the fresh file is opened: notice is this process's warning, or None when
        another process set the file aside first."""
        if notice:
            self._notices.append(notice)

    def take_notices(self) -> list[str]:
        """What happened to the file since the last call (set aside, disk full), each said once."""
        notices, self._notices = self._notices, []
        return notices

    def _recovering(self, operation: Callable[[], _T], *, opening: bool = False) -> _T:
        """Run operation; if it finds the file damaged, set the file aside, open a fresh one, run it
        again (when opening, the operation is the opening)."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            self._full = is_full(exc)
            if not is_damage(exc):
                raise
            why = str(exc)
        with contextlib.suppress(AttributeError):  # (an opening may fail before there is a connection)
            self._conn.close()
        notice = set_aside(self._state_path(), self._inode, why)
        if notice:
            log.warning("%s", notice)
        self._reopening(notice)
        if not opening:
            self._open()
        return operation()
