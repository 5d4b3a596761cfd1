"""One rate limit shared by every process (and host) that calls Defender as the same application.

Defender counts 100 calls per minute and 1,500 per hour per application and tenant. A SOAR platform
runs actions in many processes at once, so each process must see the others' calls: the sliding-window
logs live in pyrate-limiter's SQLiteBucket (one host; a file lock makes check-and-insert atomic across
processes) or RedisBucket (a cluster; a Lua script makes it atomic on the server).

What the library does not do, and this module adds around its buckets:

- **Deadline-bounded, fail-fast waiting.** pyrate-limiter's Limiter sleeps in a loop (and starts a
  background leaker thread per process). Here each bucket is used directly: one atomic put per try,
  whose verdict carries how long until the next slot frees. A lookup sleeps exactly that long when it
  fits in its deadline and otherwise fails at once as rate_limited with retry_after_s.
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
- **Cross-host time.** The Redis gate stamps calls with the Redis server's clock, so hosts whose clocks
  disagree still share one timeline.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from connector.errors import ConfigurationError, RateLimitedError
from connector.settings import Settings
from connector.state import MemoryStateStore, StateStore
from connector.stores import RedisStateStore, private_dir, private_file, redis_client, redis_errors, sqlite_errors

if TYPE_CHECKING:  # pyrate-limiter itself is imported when a gate is opened: a result-cache hit opens none
    from pyrate_limiter import AbstractBucket, Rate, RateItem

MARGIN_API_S = 1.5
"""Added to each window, in the API's seconds (1.5 s on 60 s: a 2.5% slower minute at worst)."""
MARGIN_FLOOR_REAL_S = 0.25
"""The margin never drops below this many real seconds, however much time is compressed."""
_MIN_SLEEP_S = 0.001
_LEAK_EVERY_S = 60.0


@runtime_checkable
class RateGate(Protocol):
    """Admission to call the API, shared by everyone using the same application and tenant."""

    def acquire(self, deadline: float) -> None:
        """Block until a call may be made. deadline is in time.monotonic() seconds; when no slot can be
        had before it, raise RateLimitedError at once (with retry_after_s) rather than wait in vain."""
        ...

    def pause(self, seconds: float) -> None:
        """A 429 arrived: every user of this gate waits this long before its next call."""
        ...


class UnlimitedGate:
    """Admits everything at once (unit tests); remembers the pauses it was asked for."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def acquire(self, deadline: float) -> None:
        return None

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@dataclass(frozen=True)
class Budget:
    """The calls allowed per window and how long the gate takes each window to be, in real seconds."""

    per_minute: int = 100
    per_hour: int = 1500
    time_scale: float = 1.0
    margin_api_s: float = MARGIN_API_S
    margin_floor_real_s: float = MARGIN_FLOOR_REAL_S

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        return cls(settings.rate_limit_per_minute, settings.rate_limit_per_hour, settings.rate_limit_time_scale)

    @property
    def margin_real_s(self) -> float:
        return max(self.margin_api_s / self.time_scale, self.margin_floor_real_s)

    def window_real_s(self, nominal_api_s: float) -> float:
        return nominal_api_s / self.time_scale + self.margin_real_s

    def rates(self) -> list[Rate]:
        """pyrate-limiter rates, dropping a window the other one already implies.

        pyrate-limiter refuses a longer window whose rate is more generous than the shorter one's (or
        whose limit is not larger); such a window never binds: 10 a minute allows at most 600 an hour,
        so a 1,500-an-hour rule is moot, and 50 an hour caps every minute at 50 anyway.
        """
        from pyrate_limiter import Rate

        minute_ms = round(self.window_real_s(60.0) * 1000)
        hour_ms = round(self.window_real_s(3600.0) * 1000)
        minute, hour = Rate(self.per_minute, minute_ms), Rate(self.per_hour, hour_ms)
        if self.per_hour <= self.per_minute:
            return [hour]
        if hour.limit / hour.interval > minute.limit / minute.interval:
            windows = math.ceil(3600.0 / self.time_scale / (minute_ms / 1000))
            if self.per_minute * windows <= self.per_hour:
                return [minute]
            # Not quite implied (only when margins are odd): keep the hour at the minute's density.
            hour = Rate(max(self.per_minute + 1, math.floor(self.per_minute * hour_ms / minute_ms)), hour_ms)
        return [minute, hour]

    def describe(self) -> str:
        return f"{self.per_minute} calls a minute, {self.per_hour} an hour"


def _retry_hint(seconds: float) -> float:
    return math.ceil(seconds * 10) / 10


def wait_or_refuse(wait_s: float, deadline: float, budget: Budget, *, paused: bool) -> None:
    """Sleep wait_s when that still fits before deadline; otherwise fail at once as rate_limited with
    retry_after_s, rather than wait in vain. Every gate (the platforms' own ledgers too) says it alike."""
    if time.monotonic() + wait_s > deadline:
        hint = _retry_hint(wait_s)
        if paused:
            message = (f"Defender answered 429 Too Many Requests to a lookup sharing this application, so "
                       f"all lookups pause for {hint:g} s more, beyond this lookup's time budget. "
                       f"Retry after {hint:g} s.")
        else:
            message = (f"Defender's rate limit for this application ({budget.describe()}) is in use "
                       f"by other lookups; the next free slot is {hint:g} s away, beyond this lookup's "
                       f"time budget. Retry after {hint:g} s, or raise item_budget_s.")
        raise RateLimitedError(message, http_status=None, code="RateLimitBudget", retry_after_s=hint)
    time.sleep(max(wait_s, _MIN_SLEEP_S))


class _BucketGate:
    """The acquire/pause logic around one pyrate-limiter bucket; subclasses supply clock and storage."""

    def __init__(self, bucket: AbstractBucket, budget: Budget, pause_store: StateStore, pause_key: str) -> None:
        self._bucket = bucket
        self.budget = budget
        self._pause_store = pause_store
        self._pause_key = pause_key
        self._guard = threading.Lock()
        self._last_leak = 0.0

    # -- backend hooks -----------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Milliseconds on the clock every sharer agrees on."""
        return time.time_ns() // 1_000_000

    def _admit(self) -> tuple[bool, int | None]:
        """Stamp a call and offer it to the bucket (callers hold self._guard)."""
        from pyrate_limiter import RateItem

        return self._put(RateItem("call", self.now_ms()))

    def _put(self, item: RateItem) -> tuple[bool, int | None]:
        from pyrate_limiter import Decision

        decision = self._bucket.put_decision(item)
        if not isinstance(decision, Decision):
            raise TypeError("an asynchronous bucket cannot back a synchronous gate")
        return decision.allowed, decision.retry_after_ms

    def _leak(self, now_ms: int) -> None:
        self._bucket.leak(now_ms)

    # -- the gate ----------------------------------------------------------------------------------
    def acquire(self, deadline: float) -> None:
        while True:
            now_ms = self.now_ms()
            paused_ms = self._paused_until_ms() - now_ms
            if paused_ms > 0:
                self._wait_or_fail(paused_ms / 1000, deadline, paused=True)
                continue
            with self._guard:
                allowed, retry_after_ms = self._admit()
            if allowed:
                self._maybe_leak(now_ms)
                return
            if retry_after_ms is None or retry_after_ms < 0:
                # The weight can never fit (a budget of zero): nothing to wait for.
                raise RateLimitedError(f"The rate-limit budget ({self.budget.describe()}) admits no call",
                                       retry_after_s=None)
            self._wait_or_fail(retry_after_ms / 1000, deadline, paused=False)

    def _wait_or_fail(self, wait_s: float, deadline: float, *, paused: bool) -> None:
        wait_or_refuse(wait_s, deadline, self.budget, paused=paused)

    def _paused_until_ms(self) -> int:
        raw = self._pause_store.get(self._pause_key)
        return int(raw) if raw else 0

    def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._pause_store.lock(self._pause_key, timeout_s=5.0):
            until = self.now_ms() + math.ceil(seconds * 1000)
            if until > self._paused_until_ms():
                self._pause_store.set(self._pause_key, str(until).encode(), ttl_s=seconds + 1.0)

    def _maybe_leak(self, now_ms: int) -> None:
        now = time.monotonic()
        if now - self._last_leak >= _LEAK_EVERY_S:
            self._last_leak = now
            with self._guard:
                self._leak(now_ms)


def gate_id(tenant_id: str, client_id: str) -> str:
    """Stable, SQL- and key-safe name for the (tenant, application) pair the API counts by."""
    return hashlib.sha256(f"{tenant_id.strip().lower()}|{client_id.strip().lower()}".encode()).hexdigest()[:24]


class SqliteRateGate(_BucketGate):
    """One host: pyrate-limiter's SQLiteBucket with its file lock, so processes share one log."""

    def __init__(self, path: Path, budget: Budget, tenant_id: str, client_id: str, pause_store: StateStore) -> None:
        from pyrate_limiter import SQLiteBucket

        gate = gate_id(tenant_id, client_id)
        try:
            private_dir(path.parent)
            private_file(path)
            private_file(path.with_name(path.name + ".lock"))  # filelock keeps an existing file's mode
            bucket = SQLiteBucket.init_from_file(budget.rates(), table=f"calls_{gate}", db_path=str(path),
                                                 use_file_lock=True)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"Cannot keep the rate-limit log in {path.parent} ({type(exc).__name__}: "
                                     f"{exc}); choose a writable state directory") from None
        super().__init__(bucket, budget, pause_store, f"ratepause:{gate}")
        self._file_lock = bucket.lock
        self._path = path

    def _admit(self) -> tuple[bool, int | None]:
        # Stamp the call inside the cross-process lock: a stamp taken before waiting for the lock
        # would date the call earlier than its admission, and free its slot early by the wait.
        with sqlite_errors(self._path), self._file_lock:
            return super()._admit()

    def _leak(self, now_ms: int) -> None:
        with sqlite_errors(self._path):
            super()._leak(now_ms)


@cache
def _redis_put_script() -> str:
    """pyrate-limiter's check-and-insert script, counting entries stamped *after* this call's time too.

    The library counts each window up to the caller's own timestamp. With several processes, one can
    stamp its call, lose the CPU, and run the script after another process stamped a later call and
    inserted it; counting only up to its own stamp, it misses that call and admits one too many (the
    multi-process test caught exactly that). Counting up to +inf closes the race.
    """
    from pyrate_limiter.buckets.redis_bucket import LuaScript

    original = "redis.call('ZCOUNT', bucket, window_start, now)"
    if original not in LuaScript.PUT_ITEM:
        raise RuntimeError("pyrate-limiter's Redis script changed: review connector/ratelimit.py")
    return LuaScript.PUT_ITEM.replace(original, "redis.call('ZCOUNT', bucket, window_start, '+inf')")



class RedisRateGate(_BucketGate):
    """A cluster: pyrate-limiter's RedisBucket (atomic Lua check-and-insert), stamped with Redis's clock."""

    def __init__(self, url: str, budget: Budget, tenant_id: str, client_id: str,
                 namespace: str = "mde-ipstats") -> None:
        from pyrate_limiter import RedisBucket

        self._url = url
        self._client = redis_client(url)
        gate = gate_id(tenant_id, client_id)
        self._key = f"{namespace}:rate:{gate}"
        self._rates = budget.rates()
        with redis_errors(url):
            bucket = RedisBucket(self._rates, self._client, self._key, self._client.script_load(_redis_put_script()))
        super().__init__(bucket, budget, RedisStateStore(url, namespace), f"ratepause:{gate}")

    def now_ms(self) -> int:
        with redis_errors(self._url):
            seconds, micros = self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _put(self, item: RateItem) -> tuple[bool, int | None]:
        import redis.exceptions as rex
        from pyrate_limiter import RedisBucket

        with redis_errors(self._url):
            try:
                return super()._put(item)
            except rex.NoScriptError:
                # The server restarted (scripts are not persisted): load the script again, retry once.
                assert isinstance(self._bucket, RedisBucket)
                self._bucket.script_hash = self._client.script_load(_redis_put_script())
                return super()._put(item)

    def _leak(self, now_ms: int) -> None:
        with redis_errors(self._url):
            super()._leak(now_ms)
            self._client.pexpire(self._key, max(rate.interval for rate in self._rates) + 1000)


class MemoryRateGate(_BucketGate):
    """One process only (tests, one-shot CLI runs): pyrate-limiter's InMemoryBucket."""

    def __init__(self, budget: Budget) -> None:
        from pyrate_limiter import InMemoryBucket

        super().__init__(InMemoryBucket(budget.rates()), budget, MemoryStateStore(), "ratepause")

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


RATE_FILE = "ratelimit.sqlite3"
_GATES: dict[tuple[Any, ...], _BucketGate] = {}
_GATES_GUARD = threading.Lock()


def open_rate_gate(settings: Settings, state_dir: Path) -> RateGate:
    """The gate for settings' (tenant, application), on the backend settings.store_backend names.

    Gates are reused within a process (and never across a fork): a SOAR worker that runs many actions
    keeps one connection and one bucket.
    """
    from connector.stores import open_state_store

    budget = Budget.from_settings(settings)
    state_dir = Path(state_dir).expanduser().absolute()
    backend = settings.store_backend
    where = settings.store_url.get_secret_value() if backend == "redis" and settings.store_url else str(state_dir)
    key = (os.getpid(), backend, where, settings.tenant_id.lower(), settings.client_id.lower(), budget)
    with _GATES_GUARD:
        gate = _GATES.get(key)
        if gate is None:
            if backend == "redis":
                gate = RedisRateGate(where, budget, settings.tenant_id, settings.client_id)
            elif backend == "memory":
                gate = MemoryRateGate(budget)
            else:
                gate = SqliteRateGate(state_dir / RATE_FILE, budget, settings.tenant_id, settings.client_id,
                                      open_state_store(settings, state_dir))
            _GATES[key] = gate
        return gate
