"""One rate limit shared by every process (and host) that calls Defender as the same application.

Defender counts 100 calls per minute and 1,500 per hour per application and tenant. A SOAR platform
runs actions in many processes at once, so each process must see the others' calls: each gate keeps a
sliding-window log of admitted calls (their times) where every sharer reads and writes it atomically:

- **SQLite** (one host): a table in ratelimit.sqlite3 in the state directory. ``BEGIN IMMEDIATE``
  takes SQLite's write lock, so check-and-insert is one transaction across processes; no file lock.
- **Redis** (a cluster): a sorted set per gate, checked and written by one Lua script on the server.
- **Memory** (one process): the same log in a deque.

Each call is logged with its lane (connector.lanes: interactive, automation, bulk), and a call is
admitted only if every window has room for its lane: the whole limit for a person, all but the
interactive reserve for playbooks, at most the bulk cap for searches. Still one atomic check per try.

Around the log:

- **Deadline-bounded, fail-fast waiting.** A refused call learns how long until the window's oldest
  counted call leaves it, and sleeps exactly that long when it fits in its deadline; otherwise it fails
  at once as rate_limited with retry_after_s. No background thread, no polling loop.
- **A shared pause after a 429** (another tool using the same app may have spent the budget): the
  pause is a key in the shared StateStore, read before every call by every process.
- **A safety margin in time, not in count.** Each window is lengthened by a margin (default 1.5 s of
  API time, but never under 0.25 s of real time): the server counts a call when it arrives, the gate
  when it is admitted, and the delay between the two varies from call to call (scheduling, TLS set-up).
  If call 1 is delayed by d1 and call 101 by d101, the server sees them W + d101 - d1 apart; the
  margin m keeps that above 60 s while d1 - d101 < m. Lowering the *count* instead (98 a minute) would
  not absorb that skew and would cost a whole extra window in a storm: 400 calls at 98 a minute need
  five windows instead of four. Under rate_limit_time_scale (tests against the emulator) the windows
  shrink but latency does not, hence the real-time floor.
- **One timeline.** A call is stamped while the log's lock is held (inside the SQLite transaction, or
  by the Redis script with the Redis server's clock), so a stamp never predates an admission it lost a
  race to, and hosts whose clocks disagree still share one timeline.
- **A wall-clock step is followed** (SQLite, one host): the log keeps the wall clock's offset from the
  host's monotonic clock, which every process of a boot shares and which never steps; the first
  admission that finds the offset changed moves every stamp by the change (SqliteRateGate._follow_a_step),
  so a step forward does not empty a window nor a step back hold it shut.
- **Otherwise a clock step back costs at most a window, never the size of the step** (connector.clock). That
  timeline is a wall clock, which can step back: the calls logged before the step then lie in the
  future, and counted as they are they would hold a full window shut for the step plus the window
  (100 calls, then the clock back an hour: the next call was refused for 3,661.5 s). So a log whose
  newest stamp is more than CLOCK_STEP_TOLERANCE_S ahead of now has its future stamps moved to now
  before the check: those calls still count (they were made within the last window, as far as anyone
  can tell), and leave the window one window from now. The shared 429 pause is kept as its end *and
  its length*; a pause that ends further ahead than its own length has its end moved to now plus its
  length. SQLite stamps with the host's clock (a ``clock`` seam, time.time by default), Redis with the
  server's, each applying the same rule; the memory gate's monotonic clock cannot step.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from connector.clock import CLOCK_STEP_TOLERANCE_MS, WallClock, boot_id
from connector.errors import ConfigurationError, RateLimitedError, UnavailableError
from connector.lanes import AUTOMATION, DEFAULT_LANE, INTERACTIVE, LANES, Lane, Shares, lane_code
from connector.settings import Settings
from connector.state import MemoryStateStore, StateStore
from connector.state_files import (
    NoRoomError,
    SetsAsideDamage,
    check_schema_version,
    disk_full_notice,
    inode,
    is_damage,
    is_full,
    refuse_planted,
    set_aside_orphans,
)
from connector.stores import (
    RedisStateStore,
    immediate_transaction,
    private_dir,
    private_file,
    redis_client,
    redis_errors,
    sqlite_errors,
)

log = logging.getLogger(__name__)

MARGIN_API_S = 1.5
"""Added to each window, in the API's seconds (1.5 s on 60 s: a 2.5% slower minute at worst)."""
MARGIN_FLOOR_REAL_S = 0.25
"""The margin never drops below this many real seconds, however much time is compressed."""
KEEP_AT_LEAST_MS = math.ceil((3600.0 + MARGIN_API_S) * 1000)
"""A shared log keeps at least Defender's hour (and its margin) of calls, whatever one gate's budget."""
_MIN_SLEEP_S = 0.001
_SQLITE_BUSY_TIMEOUT_S = 10.0


@runtime_checkable
class RateGate(Protocol):
    """Admission to call the API, shared by everyone using the same application and tenant."""

    def acquire(self, deadline: float, lane: Lane = DEFAULT_LANE) -> float:
        """Block until a call in ``lane`` (connector.lanes) may be made, and return the seconds it slept
        for a slot (0.0: admitted at once). deadline is in time.monotonic() seconds; when no slot can be
        had before it, raise RateLimitedError at once (with retry_after_s) rather than wait in vain."""
        ...

    def pause(self, seconds: float) -> None:
        """A 429 arrived: every user of this gate waits this long before its next call."""
        ...


class UnlimitedGate:
    """Admits everything at once (unit tests); remembers the pauses it was asked for."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def acquire(self, deadline: float, lane: Lane = DEFAULT_LANE) -> float:
        return 0.0

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


class Window(NamedTuple):
    """At most ``limit`` calls in any ``interval`` milliseconds (real time, margin included); of them at
    most ``shared`` from the automation and bulk lanes together and ``bulk`` from the bulk lane
    (connector.lanes; None: as many as the limit before, lanes off)."""

    limit: int
    interval: int
    shared: int | None = None
    bulk: int | None = None

    def shares(self) -> Shares:
        shared = self.limit if self.shared is None else self.shared
        return Shares(self.limit, shared, shared if self.bulk is None else self.bulk)


NthNewest = Callable[[int, int], int | None]
"""nth_newest(n, lane): the time of the n-th most recent call of that lane code and above in the log."""


def nth_newest_of(calls: Iterable[tuple[int, int]]) -> NthNewest:
    """NthNewest over a log held in memory: (time ms, lane code) calls, in any order."""
    newest_first = sorted(calls, reverse=True)

    def nth_newest(n: int, counted: int) -> int | None:
        stamps = [stamp for stamp, code in newest_first if code >= counted]
        return stamps[n - 1] if len(stamps) >= n else None

    return nth_newest


def wait_ms(windows: Sequence[Window], now_ms: int, nth_newest: NthNewest, lane: int = INTERACTIVE) -> int | None:
    """How long a call in lane (a code of connector.lanes) at now_ms must wait to fit every window's caps
    for its lane: 0 = go now, None = never (a zero limit).

    nth_newest(n, k) is the time of the n-th most recent call of lane k and above in the log (1 = the
    newest; k = 0 counts every call), or None when the log holds fewer. A cap of C is full while its
    C-th newest call is still inside the window, i.e. later than now_ms - interval (a call exactly one
    interval old has left); the caller may go when that call leaves, at its time + interval. Counting
    from the newest end counts calls stamped after now_ms too (a clock stepped back): they are in the
    window as surely as older ones.
    """
    wait = 0
    for window in windows:
        for counted, cap in window.shares().caps(lane):
            if cap <= 0:
                return None
            stamp = nth_newest(cap, counted)
            if stamp is not None and stamp > now_ms - window.interval:
                wait = max(wait, stamp + window.interval - now_ms)
    return wait


class Budget(NamedTuple):
    """The calls allowed per window and how long the gate takes each window to be, in real seconds."""

    per_minute: int = 100
    per_hour: int = 1500
    time_scale: float = 1.0
    margin_api_s: float = MARGIN_API_S
    margin_floor_real_s: float = MARGIN_FLOOR_REAL_S
    reserve_percent: int = 0
    """The interactive lane's reserve, a percentage of each window (connector.lanes); 0 and a bulk
    percentage of 100 are lanes off."""
    bulk_percent: int = 100
    """The bulk lane's cap, a percentage of each window."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        return cls(settings.rate_limit_per_minute, settings.rate_limit_per_hour, settings.rate_limit_time_scale,
                   reserve_percent=settings.interactive_reserve_percent, bulk_percent=settings.bulk_max_percent)

    @property
    def margin_real_s(self) -> float:
        return max(self.margin_api_s / self.time_scale, self.margin_floor_real_s)

    def window_real_s(self, nominal_api_s: float) -> float:
        return nominal_api_s / self.time_scale + self.margin_real_s

    def window(self, limit: int, nominal_api_s: float) -> Window:
        """One window, with its lanes' shares when lanes are on (connector.lanes rounds them)."""
        interval = round(self.window_real_s(nominal_api_s) * 1000)
        if self.reserve_percent <= 0 and self.bulk_percent >= 100:
            return Window(limit, interval)
        shares = Shares.of(limit, self.reserve_percent, self.bulk_percent)
        return Window(limit, interval, shares.shared, shares.bulk)

    def rates(self) -> list[Window]:
        """The windows to enforce, without one the other already implies (it could never bind, and
        each window costs a look-up per call).

        Any stretch of one hour-window splits into ceil(hour / minute) stretches no longer than a
        minute-window, so 10 a minute allow at most 590 calls in it (with the margins): a 1,500-an-hour
        rule is moot. The other way, 50 an hour cap every minute at 50 anyway. With lanes on, a window
        is moot only when each of its lanes' shares is.
        """
        minute = self.window(self.per_minute, 60.0)
        hour = self.window(self.per_hour, 3600.0)
        pairs = list(zip(minute.shares(), hour.shares(), strict=True))
        if all(per_hour <= per_minute for per_minute, per_hour in pairs):
            return [hour]
        stretches = math.ceil(hour.interval / minute.interval)
        if all(per_minute * stretches <= per_hour for per_minute, per_hour in pairs):
            return [minute]
        return [minute, hour]

    def describe(self, lane: Lane | None = None) -> str:
        """The limit in words; for a lane whose share is smaller, that share of it."""
        if lane is None:
            return f"{self.per_minute} calls a minute, {self.per_hour} an hour"
        code = lane_code(lane)
        minute, hour = (Shares.of(limit, self.reserve_percent, self.bulk_percent).caps(code)[-1][1]
                        for limit in (self.per_minute, self.per_hour))
        if (minute, hour) == (self.per_minute, self.per_hour):
            return self.describe()
        return (f"{self.describe()}, of which the {lane} lane may use {minute} a minute and {hour} an hour")


def _retry_hint(seconds: float) -> float:
    return math.ceil(seconds * 10) / 10


def wait_or_refuse(wait_s: float, deadline: float, budget: Budget, *, paused: bool,
                   lane: Lane = DEFAULT_LANE) -> float:
    """Sleep wait_s when that still fits before deadline, and return the seconds slept; otherwise fail at
    once as rate_limited with retry_after_s, rather than wait in vain. Every gate (the platforms' own
    ledgers too) says it alike."""
    if time.monotonic() + wait_s > deadline:
        hint = _retry_hint(wait_s)
        if paused:
            message = (f"Defender answered 429 Too Many Requests to a lookup sharing this application, so "
                       f"all lookups pause for {hint:g} s more, beyond this lookup's time budget. "
                       f"Retry after {hint:g} s.")
        else:
            setting = "interactive_budget_s" if lane == "interactive" else "item_budget_s"
            message = (f"Defender's rate limit for this application ({budget.describe(lane)}) is in use "
                       f"by other lookups; the next free slot is {hint:g} s away, beyond this {lane} lookup's "
                       f"time budget. Retry after {hint:g} s, or raise {setting}.")
        raise RateLimitedError(message, http_status=None, code="RateLimitBudget", retry_after_s=hint)
    slept = max(wait_s, _MIN_SLEEP_S)
    time.sleep(slept)
    return slept


_ADMITTED, _PAUSED, _FULL = "admitted", "paused", "full"


class PauseRecord(NamedTuple):
    """The shared 429 pause as stored: when it ends and how long it was, in the gate clock's ms."""

    until_ms: int
    length_ms: int | None
    """None when an earlier version wrote it (its end alone)."""

    def encode(self) -> bytes:
        return f"{self.until_ms} {self.length_ms or 0}".encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> PauseRecord | None:
        try:
            until, _, length = (raw or b"").decode().partition(" ")
            return cls(int(until), (int(length) or None) if length else None)
        except ValueError:
            return None

    def restarted_if_stepped(self, now_ms: int) -> PauseRecord | None:
        """The pause restarted now at its length when it ends further ahead than that length (the clock
        stepped back since it was set); None when it did not."""
        if self.length_ms is not None and self.until_ms - now_ms > self.length_ms + CLOCK_STEP_TOLERANCE_MS:
            return PauseRecord(now_ms + self.length_ms, self.length_ms)
        return None


class _LogGate:
    """acquire and pause over a sliding-window log; each backend keeps the log and its clock."""

    def __init__(self, budget: Budget, pause_store: StateStore, pause_key: str) -> None:
        self.budget = budget
        self.windows = budget.rates()
        self.horizon_ms = max(window.interval for window in self.windows)
        """A call older than this is out of every window of this budget."""
        self.keep_ms = max(self.horizon_ms, KEEP_AT_LEAST_MS)
        """What a shared log keeps: gates of one application with different budgets (two SOAR assets)
        share its log, and one whose hourly limit its minute limit implies must not prune the hour
        another gate counts."""
        self._pause_store = pause_store
        self._pause_key = pause_key

    # -- backend hooks -----------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Milliseconds on the clock every sharer agrees on."""
        return time.time_ns() // 1_000_000

    def _admit(self, lane: int) -> int | None:
        """Atomically: stamp a call of lane (a code), and log it if every window has room for that lane.
        Returns wait_ms's verdict."""
        raise NotImplementedError

    def _try(self, lane: int) -> tuple[str, int | None]:
        """(verdict, ms to wait): the pause first (it stops every lane), then the windows."""
        now = self.now_ms()
        paused_ms = self._paused_until_ms(now) - now
        if paused_ms > 0:
            return _PAUSED, paused_ms
        wait = self._admit(lane)
        return (_ADMITTED, 0) if wait == 0 else (_FULL, wait)

    # -- the gate ----------------------------------------------------------------------------------
    def acquire(self, deadline: float, lane: Lane = DEFAULT_LANE) -> float:
        code = lane_code(lane)
        slept = 0.0
        while True:
            verdict, wait = self._try(code)
            if verdict == _ADMITTED:
                return slept
            if wait is None:
                raise RateLimitedError(f"The rate-limit budget ({self.budget.describe(lane)}) admits no call",
                                       retry_after_s=None)
            slept += wait_or_refuse(wait / 1000, deadline, self.budget, paused=verdict == _PAUSED, lane=lane)

    def _pause_record(self) -> PauseRecord | None:
        return PauseRecord.decode(self._pause_store.get(self._pause_key))

    def _paused_until_ms(self, now_ms: int) -> int:
        """When the shared pause ends; one the clock stepped back under is restarted now, at its length."""
        record = self._pause_record()
        if record is not None and record.restarted_if_stepped(now_ms) is not None:
            with self._pause_store.lock(self._pause_key, timeout_s=5.0):
                record = self._pause_record()
                restarted = record.restarted_if_stepped(now_ms) if record is not None else None
                if restarted is not None:
                    self._write_pause(restarted)
                    record = restarted
        return record.until_ms if record is not None else 0

    def _write_pause(self, record: PauseRecord) -> None:
        self._pause_store.set(self._pause_key, record.encode(), ttl_s=(record.length_ms or 0) / 1000 + 1.0)

    def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._pause_store.lock(self._pause_key, timeout_s=5.0):
            length = math.ceil(seconds * 1000)
            now = self.now_ms()
            current = self._pause_record()
            if current is None or current.restarted_if_stepped(now) is not None or now + length > current.until_ms:
                self._write_pause(PauseRecord(now + length, length))


def gate_id(tenant_id: str, client_id: str) -> str:
    """Stable, SQL- and key-safe name for the (tenant, application) pair the API counts by."""
    return hashlib.sha256(f"{tenant_id.strip().lower()}|{client_id.strip().lower()}".encode()).hexdigest()[:24]


_LOST_MINUTE = "; the lost minute counts as full, calls resume one window later"


class SqliteRateGate(_LogGate, SetsAsideDamage):
    """One host: the log is a table of the rate file, and SQLite's write lock makes each try atomic.

    Opening costs a connect and two pragmas (no schema work when the table exists: the first
    transaction creates it if missing), because every fresh action process opens the gate.

    A damaged rate file (or one of another schema version) is set aside and started afresh
    (connector.state_files), and the fresh log cannot know what the lost one held. **The rule after a
    reset: the lost minute counts as full.** The process that set the file aside writes the shortest
    window's limit of calls into the fresh log, stamped at the reset, so nobody is admitted until one
    window (plus its margin) after it; the longer (hourly) window is not refilled, since holding every
    call for an hour on a guess would cost more than the 429 it might avoid, and a 429 still pauses
    every sharer (the shared pause). So a reset costs at most one minute of calls, and never a burst
    over the minute's limit.

    Each call is logged with its lane's code (connector.lanes), and an index on (gate, time, lane)
    answers "the n-th newest call of lane k and above" from the index alone. A log written before lanes
    (no lane column) gets the column, every call in it counted as automation; a process of that older
    version still writing to it logs its calls as automation too (the column's default), so the file
    keeps its schema version.
    """

    SCHEMA_VERSION = 1
    _SCHEMA = ("CREATE TABLE IF NOT EXISTS rate_log (gate TEXT NOT NULL, at_ms INTEGER NOT NULL,"
               f" lane INTEGER NOT NULL DEFAULT {AUTOMATION})",
               "CREATE TABLE IF NOT EXISTS rate_clock (gate TEXT PRIMARY KEY, boot TEXT NOT NULL,"
               " offset_ms INTEGER NOT NULL)",
               f"PRAGMA user_version = {SCHEMA_VERSION}")
    _LANE_SCHEMA = (f"ALTER TABLE rate_log ADD COLUMN lane INTEGER NOT NULL DEFAULT {AUTOMATION}",)
    _INDEXES = ("CREATE INDEX IF NOT EXISTS rate_log_by_lane ON rate_log (gate, at_ms, lane)",
                "DROP INDEX IF EXISTS rate_log_by_time")

    def __init__(self, path: Path, budget: Budget, tenant_id: str, client_id: str, pause_store: StateStore, *,
                 clock: WallClock = time.time) -> None:
        gate = gate_id(tenant_id, client_id)
        super().__init__(budget, pause_store, f"ratepause:{gate}")
        self._gate = gate
        self._clock = clock
        self._path = path
        self._guard = threading.Lock()
        self._notices: list[str] = []
        self._refill_lost_minute = False
        self._unlogged: list[tuple[int, int]] = []
        """(time, lane code) of the calls admitted while the disk was full."""
        self._full = False
        try:
            with sqlite_errors(path):
                self._recovering(self._open, opening=True)
        except (OSError, UnavailableError) as exc:
            if self._full or is_full(exc):
                raise NoRoomError(disk_full_notice(path, "this process counts its own calls only")) from None
            raise ConfigurationError(f"Cannot keep the rate-limit log in {path} ({type(exc).__name__}: "
                                     f"{exc}); choose a writable state directory") from None

    def _open(self) -> None:
        private_dir(self._path.parent)
        refuse_planted(self._path)
        orphans = set_aside_orphans(self._path)  # the log's file is gone: its minute is lost as well
        if orphans:
            self._notices.append(orphans + _LOST_MINUTE)
            self._refill_lost_minute = True
        private_file(self._path)
        self._inode = inode(self._path)
        self._schema_ready = False
        self._conn = sqlite3.connect(self._path, timeout=_SQLITE_BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        check_schema_version(self._conn, self.SCHEMA_VERSION, self._path)
        self._use_wal()

    def _state_path(self) -> Path:
        return self._path

    def _reopening(self, notice: str | None) -> None:
        if notice:  # this process set the log aside: it refills the lost minute
            super()._reopening(notice + _LOST_MINUTE)
            self._refill_lost_minute = True

    def _use_wal(self) -> None:
        """WAL commits without an fsync (synchronous=NORMAL); a no-op once the file is in WAL mode.

        Switching needs the file to itself and SQLite refuses it at once while another process is in
        it: then this process carries on in rollback-journal mode (just as atomic) and a later one
        switches.
        """
        try:
            self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if is_damage(exc):
                raise
        self._conn.execute("PRAGMA synchronous=NORMAL")

    def now_ms(self) -> int:
        return math.floor(self._clock() * 1000)

    @staticmethod
    def _monotonic_ms() -> int:
        """The host's monotonic clock, against which a step of the wall clock shows (a seam for tests
        whose fake wall clock stands for time passing, which moves both)."""
        return time.monotonic_ns() // 1_000_000

    def _nth_newest(self, n: int, lane: int = INTERACTIVE) -> int | None:
        if lane == INTERACTIVE:  # every call counts
            row = self._conn.execute("SELECT at_ms FROM rate_log WHERE gate = ? ORDER BY at_ms DESC LIMIT 1 OFFSET ?",
                                     (self._gate, n - 1)).fetchone()
        else:
            row = self._conn.execute("SELECT at_ms FROM rate_log WHERE gate = ? AND lane >= ? ORDER BY at_ms DESC "
                                     "LIMIT 1 OFFSET ?", (self._gate, lane, n - 1)).fetchone()
        return None if row is None else int(row[0])

    def _restamp_the_future(self, conn: sqlite3.Connection, now: int) -> None:
        """When the newest call is stamped further ahead of now than the tolerance (the clock stepped
        back), every call stamped after now counts as made now."""
        newest = self._nth_newest(1)
        if newest is not None and newest > now + CLOCK_STEP_TOLERANCE_MS:
            conn.execute("UPDATE rate_log SET at_ms = ? WHERE gate = ? AND at_ms > ?", (now, self._gate, now))

    def _follow_a_step(self, conn: sqlite3.Connection, now: int) -> None:
        """Move the log by any step of the wall clock since the last admission, back or forward.

        The log is stamped with the wall clock, which every process of the host shares and which can
        step; the host's monotonic clock (CLOCK_MONOTONIC: one per boot, shared by every process of
        the host, never stepped) cannot. Their difference is therefore constant but for steps (and
        slewing, milliseconds): the log keeps it, and a change of more than the tolerance is a step,
        by exactly that much, taken by whichever process admits next. Every stamp moves by the step,
        so a window holds after a step what it held before, neither emptied by a step forward (which
        would let a second full minute through at once) nor held shut by a step back. A log written
        in another boot (or where no boot id can be read) is left to _restamp_the_future's rule."""
        boot = boot_id()
        if boot is None:
            return
        offset = now - self._monotonic_ms()
        row = conn.execute("SELECT boot, offset_ms FROM rate_clock WHERE gate = ?", (self._gate,)).fetchone()
        if row is not None and row[0] == boot and abs(offset - int(row[1])) <= CLOCK_STEP_TOLERANCE_MS:
            return
        if row is not None and row[0] == boot:
            step = offset - int(row[1])
            log.warning("the wall clock stepped %+.3f s: the rate-limit log moves with it", step / 1000)
            conn.execute("UPDATE rate_log SET at_ms = at_ms + ? WHERE gate = ?", (step, self._gate))
        conn.execute("INSERT OR REPLACE INTO rate_clock (gate, boot, offset_ms) VALUES (?, ?, ?)",
                     (self._gate, boot, offset))

    def _admit(self, lane: int) -> int | None:
        with sqlite_errors(self._path), self._guard:
            try:
                return self._recovering(lambda: self._admit_once(lane))
            except sqlite3.DatabaseError as exc:
                if not is_full(exc):
                    raise
            return self._admit_unlogged(lane)

    def _admit_unlogged(self, lane: int) -> int | None:
        """The disk is full and the log cannot take a call: admit against what the log holds plus this
        process's own calls since (kept here, and written into the log when there is room again). The
        other processes' calls made meanwhile cannot be seen: the shared 429 pause covers that gap."""
        now = self.now_ms()
        self._unlogged = [(stamp, code) for stamp, code in self._unlogged if stamp > now - self.keep_ms]
        deepest = max(window.limit for window in self.windows)
        try:
            logged = [(int(row[0]), int(row[1])) for row in self._conn.execute(
                "SELECT at_ms, lane FROM rate_log WHERE gate = ? ORDER BY at_ms DESC LIMIT ?", (self._gate, deepest))]
        except sqlite3.OperationalError:  # a log from before lanes, not yet given its lane column
            logged = [(int(row[0]), AUTOMATION) for row in self._conn.execute(
                "SELECT at_ms FROM rate_log WHERE gate = ? ORDER BY at_ms DESC LIMIT ?", (self._gate, deepest))]
        wait = wait_ms(self.windows, now, nth_newest_of([*logged, *self._unlogged]), lane)
        if wait == 0:
            self._unlogged.append((now, lane))
        notice = disk_full_notice(self._path, "the rate limit counts this process's calls and those logged "
                                              "before, not other processes' calls since")
        if notice not in self._notices:
            log.warning("%s", notice)
            self._notices.append(notice)
        return wait

    def _set_up(self, conn: sqlite3.Connection) -> None:
        """The tables, the lane column (added to a log written before lanes) and the index."""
        for statement in self._SCHEMA:
            conn.execute(statement)
        if "lane" not in {row[1] for row in conn.execute("PRAGMA table_info(rate_log)")}:
            for statement in self._LANE_SCHEMA:
                conn.execute(statement)
        for statement in self._INDEXES:
            conn.execute(statement)

    def _admit_once(self, lane: int) -> int | None:
        with immediate_transaction(self._conn) as conn:
            if not self._schema_ready:
                self._set_up(conn)
            if self._unlogged:  # calls admitted while the disk was full, counted by everyone from now on
                conn.executemany("INSERT INTO rate_log (gate, at_ms, lane) VALUES (?, ?, ?)",
                                 [(self._gate, stamp, code) for stamp, code in self._unlogged])
            # Stamped with the write lock held: a stamp taken before waiting for the lock would
            # date the call earlier than its admission, and free its slot early by the wait.
            now = self.now_ms()
            self._follow_a_step(conn, now)
            if self._refill_lost_minute:  # logged as automation: full for every lane
                minute = min(self.windows, key=lambda window: window.interval)
                conn.executemany("INSERT INTO rate_log (gate, at_ms, lane) VALUES (?, ?, ?)",
                                 [(self._gate, now, AUTOMATION)] * minute.limit)
            self._restamp_the_future(conn, now)
            wait = wait_ms(self.windows, now, self._nth_newest, lane)
            if wait == 0:
                conn.execute("INSERT INTO rate_log (gate, at_ms, lane) VALUES (?, ?, ?)", (self._gate, now, lane))
                conn.execute("DELETE FROM rate_log WHERE gate = ? AND at_ms <= ?",
                             (self._gate, now - self.keep_ms))
        self._schema_ready = True
        self._refill_lost_minute = False
        self._unlogged = []
        return wait


_REDIS_ADMIT_LUA = """
-- KEYS[1]: the call log, a sorted set scored by call time (ms); KEYS[2]: the pause ("until length", ms);
-- KEYS[3], KEYS[4]: the same log of the automation and bulk lanes' calls, and of the bulk lane's alone.
-- ARGV[1]: how long the log keeps a call (ms); ARGV[2]: the clock-step tolerance (ms); ARGV[3]: the
-- call's lane (0 interactive, 1 automation, 2 bulk: it is logged in KEYS[1] and, from 1, KEYS[3], from 2,
-- KEYS[4]); then, per cap to fit, the lane it counts from (0, 1, 2: KEYS[1], KEYS[3], KEYS[4]), the cap
-- and the window's interval (ms).
-- Returns {0, 0} admitted, {1, ms} paused, {2, ms} full, {3, 0} never (a zero limit).
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tolerance = tonumber(ARGV[2])
local logs = {KEYS[1], KEYS[3], KEYS[4]}
-- A stamp further ahead than it could be means the server's clock stepped back: count it as now.
local raw = redis.call('GET', KEYS[2])
local paused_until = 0
if raw then
  local until_ms, length = string.match(raw, '^(%d+) (%d+)$')
  if until_ms then
    paused_until, length = tonumber(until_ms), tonumber(length)
    if length > 0 and paused_until - now > length + tolerance then
      paused_until = now + length
      redis.call('SET', KEYS[2], string.format('%d %d', paused_until, length), 'PX', length + 1000)
    end
  else
    paused_until = tonumber(raw) or 0
  end
end
if paused_until > now then return {1, paused_until - now} end
for _, log in ipairs(logs) do
  local newest = redis.call('ZREVRANGE', log, 0, 0, 'WITHSCORES')
  if newest[2] and tonumber(newest[2]) > now + tolerance then
    local ahead = redis.call('ZCOUNT', log, '(' .. now, '+inf')
    redis.call('ZREMRANGEBYSCORE', log, '(' .. now, '+inf')
    local same = redis.call('ZCOUNT', log, now, now)
    for i = 1, ahead do
      redis.call('ZADD', log, now, string.format('%d:%d', now, same + i - 1))
    end
  end
end
local wait = 0
for i = 4, #ARGV, 3 do
  local log, cap, interval = logs[tonumber(ARGV[i]) + 1], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if cap <= 0 then return {3, 0} end
  local nth = redis.call('ZREVRANGE', log, cap - 1, cap - 1, 'WITHSCORES')
  if nth[2] then
    local stamp = tonumber(nth[2])
    if stamp > now - interval then wait = math.max(wait, stamp + interval - now) end
  end
end
if wait > 0 then return {2, wait} end
local keep = tonumber(ARGV[1])
for lane = 0, tonumber(ARGV[3]) do
  local log = logs[lane + 1]
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - keep)
  local same = redis.call('ZCOUNT', log, now, now)
  redis.call('ZADD', log, now, string.format('%d:%d', now, same))
  redis.call('PEXPIRE', log, keep + 1000)
end
return {0, 0}
"""
_REDIS_ADMIT_SHA = hashlib.sha1(_REDIS_ADMIT_LUA.encode(), usedforsecurity=False).hexdigest()
_REDIS_VERDICTS = {0: _ADMITTED, 1: _PAUSED, 2: _FULL}


class RedisRateGate(_LogGate):
    """A cluster: the log is a sorted set, checked and written by one Lua script with Redis's clock.

    The script reads the server's clock itself (``TIME``; Redis >= 5 replicates a script's effects,
    not the script, so a script that reads the clock may write), which makes stamp, check and insert
    one atomic step: no process can stamp a call, lose the CPU and be overtaken by a later stamp (the
    race the multi-process test once caught in a client-stamped script), and a try costs one round
    trip, the 429 pause read included. Members are "time:n" (n counts the calls of that millisecond),
    unique without a counter key. The script is sent by its SHA1; a server that does not know it
    (restarted: scripts are not persisted) is given it once more. The lanes (connector.lanes) keep two
    more sorted sets beside the log, of the automation and bulk lanes' calls and of the bulk lane's, so
    each count a lane must fit is one ZREVRANGE.
    """

    def __init__(self, url: str, budget: Budget, tenant_id: str, client_id: str,
                 namespace: str = "mde-ipstats") -> None:
        gate = gate_id(tenant_id, client_id)
        pause_store = RedisStateStore(url, namespace)
        super().__init__(budget, pause_store, f"ratepause:{gate}")
        self._url = url
        self._client = redis_client(url)
        log = f"{namespace}:rate:{gate}"
        self._keys = (log, pause_store.key(self._pause_key), f"{log}:shared", f"{log}:bulk")
        self._args = {code: (self.keep_ms, CLOCK_STEP_TOLERANCE_MS, code,
                             *(number for window in self.windows for counted, cap in window.shares().caps(code)
                               for number in (counted, cap, window.interval)))
                      for code in range(len(LANES))}

    def now_ms(self) -> int:
        with redis_errors(self._url):
            seconds, micros = self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _try(self, lane: int) -> tuple[str, int | None]:
        import redis.exceptions as rex

        args = self._args[lane]
        with redis_errors(self._url):
            try:
                code, wait = self._client.evalsha(_REDIS_ADMIT_SHA, len(self._keys), *self._keys, *args)
            except rex.NoScriptError:
                self._client.script_load(_REDIS_ADMIT_LUA)
                code, wait = self._client.evalsha(_REDIS_ADMIT_SHA, len(self._keys), *self._keys, *args)
        return _REDIS_VERDICTS.get(int(code), _FULL), None if int(code) == 3 else int(wait)


class MemoryRateGate(_LogGate):
    """One process only (tests, one-shot CLI runs): the log in a deque, on the monotonic clock."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget, MemoryStateStore(), "ratepause")
        self._logs: list[deque[int]] = [deque() for _ in LANES]
        """Per lane code k, the calls of lane k and above (a call is in the logs up to its lane's)."""
        self._guard = threading.Lock()

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def _nth_newest(self, n: int, lane: int = INTERACTIVE) -> int | None:
        log = self._logs[lane]
        return log[-n] if len(log) >= n else None

    def _admit(self, lane: int) -> int | None:
        with self._guard:
            now = self.now_ms()
            for log in self._logs:
                while log and log[0] <= now - self.horizon_ms:
                    log.popleft()
            wait = wait_ms(self.windows, now, self._nth_newest, lane)
            if wait == 0:
                for log in self._logs[:lane + 1]:
                    log.append(now)
            return wait


class NoRoomGate(MemoryRateGate):
    """This process's gate while the disk holding the rate file has no room even to open it: it counts
    the process's own calls (the other processes' are unseen, and the shared 429 pause is this
    process's own), and each result says so."""

    def __init__(self, budget: Budget, notice: str) -> None:
        super().__init__(budget)
        self._notice = notice

    def take_notices(self) -> list[str]:
        return [self._notice]


RATE_FILE = "ratelimit.sqlite3"
_GATES: dict[tuple[Any, ...], _LogGate] = {}
_GATES_GUARD = threading.Lock()


def open_rate_gate(settings: Settings, state_dir: Path) -> RateGate:
    """The gate for settings' (tenant, application), on the backend settings.store_backend names.

    Gates are reused within a process (and never across a fork): a SOAR worker that runs many actions
    keeps one connection and one log.
    """
    from connector.credentials import quota_holder
    from connector.stores import open_state_store

    budget = Budget.from_settings(settings)
    state_dir = Path(state_dir).expanduser().absolute()
    backend = settings.store_backend
    where = settings.store_url.get_secret_value() if backend == "redis" and settings.store_url else str(state_dir)
    holder = quota_holder(settings)
    key = (os.getpid(), backend, where, settings.tenant_id.lower(), holder.lower(), budget)
    with _GATES_GUARD:
        gate = _GATES.get(key)
        if gate is None:
            if backend == "redis":
                gate = RedisRateGate(where, budget, settings.tenant_id, holder)
            elif backend == "memory":
                gate = MemoryRateGate(budget)
            else:
                try:
                    gate = SqliteRateGate(state_dir / RATE_FILE, budget, settings.tenant_id, holder,
                                          open_state_store(settings, state_dir))
                except NoRoomError as exc:
                    log.warning("%s", exc.message)
                    return NoRoomGate(budget, exc.message)  # not kept: the next lookup tries the file again
            _GATES[key] = gate
        return gate
