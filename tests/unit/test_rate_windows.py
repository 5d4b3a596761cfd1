"""The sliding-window arithmetic every gate shares, and what opening a gate costs a fresh process.

A window of limit L over an interval I holds the calls stamped in (now - I, now]: a call exactly one
interval old has left it. A full window makes the caller wait until its oldest counted call leaves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.errors import RateLimitedError
from connector.ratelimit import KEEP_AT_LEAST_MS, Budget, MemoryRateGate, SqliteRateGate, Window, wait_ms
from connector.stores import SqliteStateStore

ROOT = Path(__file__).resolve().parents[2]
TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"


def log_of(*stamps: int) -> Callable[[int, int], int | None]:
    """nth_newest over a log holding stamps (in any order)."""
    newest_first = sorted(stamps, reverse=True)
    return lambda n, lane=0: newest_first[n - 1] if len(newest_first) >= n else None


# -- the arithmetic -----------------------------------------------------------------------------------

def test_an_empty_log_admits_at_once() -> None:
    assert wait_ms([Window(3, 1000)], 5000, log_of()) == 0


def test_one_below_the_limit_admits_at_once() -> None:
    assert wait_ms([Window(3, 1000)], 5000, log_of(4100, 4500)) == 0


def test_exactly_at_the_limit_the_wait_is_the_time_until_the_oldest_counted_call_leaves() -> None:
    # 4100 leaves the window (4100, 5100] at 5100: 100 ms from now.
    assert wait_ms([Window(3, 1000)], 5000, log_of(4100, 4500, 4900)) == 100


def test_only_the_calls_inside_the_window_count() -> None:
    # 3000 and 3900 are out of (4000, 5000]: two inside, one slot left.
    assert wait_ms([Window(3, 1000)], 5000, log_of(3000, 3900, 4500, 4900)) == 0


def test_a_call_exactly_one_interval_old_has_left_the_window() -> None:
    assert wait_ms([Window(3, 1000)], 5000, log_of(4000, 4500, 4900)) == 0
    assert wait_ms([Window(3, 1000)], 4999, log_of(4000, 4500, 4900)) == 1


def test_over_the_limit_the_wait_is_until_enough_calls_leave() -> None:
    # Five in the window, limit three: the third newest (4300) must leave, at 5300.
    assert wait_ms([Window(3, 1000)], 5000, log_of(4100, 4200, 4300, 4600, 4900)) == 300


def test_calls_stamped_after_now_count_too() -> None:
    # Another process stamped 5200 with a clock ahead of this one's: the window is full until 4300 leaves.
    assert wait_ms([Window(2, 1000)], 5000, log_of(4300, 5200)) == 300


def test_the_longest_wait_of_all_windows_wins() -> None:
    windows = [Window(2, 1000), Window(4, 10_000)]
    log = log_of(-2000, 1000, 4600, 4900)
    # The short window is full until 4600 leaves (600 ms); the long one until -2000 leaves (3000 ms).
    assert wait_ms(windows, 5000, log) == 3000
    assert wait_ms(windows[:1], 5000, log) == 600


def test_a_zero_limit_never_admits() -> None:
    assert wait_ms([Window(0, 1000)], 5000, log_of()) is None


def test_the_windows_are_whole_milliseconds_with_the_names_the_ledgers_read() -> None:
    minute, hour = Budget().rates()
    assert (minute.limit, minute.interval, hour.limit, hour.interval) == (100, 61_500, 1500, 3_601_500)
    assert all(isinstance(number, int) for number in (*minute.shares(), minute.interval, *hour.shares(), hour.interval))


def test_windows_neither_implies_are_both_kept_as_configured() -> None:
    # 100 a minute allow up to 5,900 in an hour-window (59 minute-windows): a 5,880 rule still binds.
    assert Budget(per_minute=100, per_hour=5880).rates() == [Window(100, 61_500), Window(5880, 3_601_500)]
    assert Budget(per_minute=100, per_hour=5900).rates() == [Window(100, 61_500)]


# -- the gates apply it alike -------------------------------------------------------------------------

# 3 calls per 1.2 s (a "minute" of 1 s plus 0.2 s of margin); the hourly rule is implied and dropped.
SMALL = Budget(per_minute=3, per_hour=1500, time_scale=60.0, margin_api_s=0.0, margin_floor_real_s=0.2)


@pytest.fixture(params=["memory", "sqlite"])
def clocked_gate(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[int]]]:
    """A gate whose clock reads the last value of the returned list (ms)."""
    if request.param == "memory":
        gate: Any = MemoryRateGate(SMALL)
    else:
        gate = SqliteRateGate(tmp_path / "ratelimit.sqlite3", SMALL, TENANT, CLIENT,
                              SqliteStateStore(tmp_path / "state.sqlite3"))
    clock = [1_000_000]
    monkeypatch.setattr(gate, "now_ms", lambda: clock[-1])
    # Time passing moves the monotonic clock as much as the wall clock: no step for the SQLite gate to follow.
    monkeypatch.setattr(gate, "_monotonic_ms", lambda: clock[-1], raising=False)
    yield gate, clock


def refusal_after(gate: Any) -> float | None:
    """Try once with no time to wait: None when admitted, else the retry_after_s it was refused with."""
    try:
        gate.acquire(deadline=0.0)
    except RateLimitedError as refused:
        return refused.retry_after_s
    return None


def test_a_gate_admits_its_limit_then_refuses_until_the_oldest_leaves(clocked_gate: tuple[Any, list[int]]) -> None:
    gate, clock = clocked_gate
    assert SMALL.rates() == [Window(3, 1200)]
    for at in (1_000_000, 1_000_100, 1_000_200):
        clock.append(at)
        assert refusal_after(gate) is None
    clock.append(1_000_300)
    assert refusal_after(gate) == 0.9  # 1_000_000 leaves at 1_001_200
    clock.append(1_001_199)
    assert refusal_after(gate) == 0.1  # 1 ms, rounded up to the hint's tenth of a second
    clock.append(1_001_200)
    assert refusal_after(gate) is None  # exactly at the edge: the oldest has left
    assert refusal_after(gate) == 0.1  # and the window is full again until 1_000_100 leaves


def test_a_refused_try_takes_no_slot(clocked_gate: tuple[Any, list[int]]) -> None:
    gate, clock = clocked_gate
    for _ in range(3):
        assert refusal_after(gate) is None
    for _ in range(5):
        assert refusal_after(gate) is not None
    clock.append(clock[-1] + 1200)
    for _ in range(3):
        assert refusal_after(gate) is None


def test_the_sqlite_log_forgets_calls_older_than_defenders_hour(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    gate = SqliteRateGate(tmp_path / "ratelimit.sqlite3", SMALL, TENANT, CLIENT,
                          SqliteStateStore(tmp_path / "state.sqlite3"))
    clock = [1_000_000]
    monkeypatch.setattr(gate, "now_ms", lambda: clock[-1])
    # Time passing moves the monotonic clock as much as the wall clock: no step for the SQLite gate to follow.
    monkeypatch.setattr(gate, "_monotonic_ms", lambda: clock[-1], raising=False)
    for step in range(10):
        clock.append(1_000_000 + step * (KEEP_AT_LEAST_MS // 4))
        assert refusal_after(gate) is None
    with sqlite3.connect(tmp_path / "ratelimit.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM rate_log").fetchone()[0] == 4  # the last hour's, no more


def test_a_gate_whose_budget_needs_no_hour_does_not_prune_the_hour_another_gate_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two SOAR assets of one application sharing the state directory, with different budgets: the
    # narrow one keeps only its minute, and once pruned the other's hourly history away (79 admitted
    # against an hourly limit of 40, found by review).
    exact = {"margin_api_s": 0.0, "margin_floor_real_s": 0.0}
    hourly = Budget(per_minute=100, per_hour=120, **exact)
    minutely = Budget(per_minute=1, per_hour=1500, **exact)
    assert len(hourly.rates()) == 2 and len(minutely.rates()) == 1
    store = SqliteStateStore(tmp_path / "state.sqlite3")
    first = SqliteRateGate(tmp_path / "ratelimit.sqlite3", hourly, TENANT, CLIENT, store)
    second = SqliteRateGate(tmp_path / "ratelimit.sqlite3", minutely, TENANT, CLIENT, store)
    clock = [1_000_000]
    for gate in (first, second):
        monkeypatch.setattr(gate, "now_ms", lambda: clock[-1])
        # Time passing moves the monotonic clock as much as the wall clock: no step to follow.
        monkeypatch.setattr(gate, "_monotonic_ms", lambda: clock[-1])
    for minute in range(2):
        for call in range(60):
            clock.append(1_000_000 + minute * 61_000 + call)
            assert refusal_after(first) is None
    assert refusal_after(first) is not None  # the hour's 120 are spent
    clock.append(clock[-1] + 70_000)
    assert refusal_after(second) is None  # the other gate's one call a minute
    assert refusal_after(first) is not None  # and the first gate's hour is still full


def test_the_rate_file_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    SqliteRateGate(state / "ratelimit.sqlite3", SMALL, TENANT, CLIENT, SqliteStateStore(tmp_path / "s.sqlite3"))
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "ratelimit.sqlite3").stat().st_mode & 0o777 == 0o600


# -- what a fresh process loads -----------------------------------------------------------------------

_OPEN_AND_ACQUIRE = """
import json, sys, time
from pathlib import Path
from connector.ratelimit import open_rate_gate
from connector.settings import Settings
settings = Settings(tenant_id=sys.argv[2], client_id=sys.argv[3], client_secret="x")
open_rate_gate(settings, Path(sys.argv[1])).acquire(time.monotonic() + 5)
print(json.dumps(sorted(name for name in ("pyrate_limiter", "filelock") if name in sys.modules)))
"""


def loaded_by_a_fresh_gate(state_dir: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _OPEN_AND_ACQUIRE, str(state_dir), TENANT, CLIENT],
                          capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_a_fresh_process_opening_a_sqlite_gate_loads_no_rate_limit_library_and_no_file_lock(tmp_path: Path) -> None:
    assert loaded_by_a_fresh_gate(tmp_path) == []  # creates the rate file and the state store's file
    assert loaded_by_a_fresh_gate(tmp_path) == []  # opens them, as every action after the first does
