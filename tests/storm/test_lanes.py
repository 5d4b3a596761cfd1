"""Lanes in the shared rate limit, on every gate (memory, SQLite, Redis): the reserve only interactive
lookups may use, the bulk cap, both windows, a 429's pause for every lane, and lanes off as before.

Each boundary is found by asking with a deadline of now: a lane with room is admitted at once, a lane
without is refused at once (RateLimitedError), so the tests count admissions exactly, without timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.errors import RateLimitedError
from connector.lanes import Lane
from connector.ratelimit import Budget, MemoryRateGate, RedisRateGate, SqliteRateGate
from connector.stores import SqliteStateStore

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"

# Ten calls a minute, the minute a whole real minute: nothing leaves a window during a test.
# Reserve 20% = 2 calls (automation and bulk together: 8); bulk at most 50% = 5.
TEN = Budget(per_minute=10, per_hour=1500, reserve_percent=20, bulk_percent=50)

GateFactory = Callable[[Budget], Any]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_gate(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> GateFactory:
    """A fresh gate of the parametrized backend; every gate a test makes shares one log."""
    if request.param == "memory":
        return MemoryRateGate
    if request.param == "sqlite":
        store = SqliteStateStore(tmp_path / "state.sqlite3")
        return lambda budget: SqliteRateGate(tmp_path / "ratelimit.sqlite3", budget, TENANT, CLIENT, store)
    url = request.getfixturevalue("redis_url")
    return lambda budget: RedisRateGate(url, budget, TENANT, CLIENT, namespace=namespace)


def admitted(gate: Any, lane: Lane, times: int = 1) -> int:
    """How many of ``times`` calls in lane the gate admits at once (it refuses the rest at once)."""
    count = 0
    for _ in range(times):
        try:
            gate.acquire(time.monotonic(), lane)
        except RateLimitedError:
            continue
        count += 1
    return count


def test_automation_stops_at_the_reserve_which_interactive_then_uses(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    assert admitted(gate, "automation", 9) == 8  # 10 less the reserve of 2
    assert admitted(gate, "bulk") == 0  # bulk cannot touch the reserve either
    assert admitted(gate, "interactive", 3) == 2  # the reserve, and then the whole limit is spent


def test_interactive_calls_within_the_reserve_leave_automations_share_whole(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    assert admitted(gate, "interactive", 2) == 2
    assert admitted(gate, "automation", 9) == 8


def test_interactive_may_use_the_whole_limit_and_automation_then_gets_what_is_left(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    assert admitted(gate, "interactive", 6) == 6
    assert admitted(gate, "automation", 9) == 4
    assert admitted(gate, "interactive", 2) == 0


def test_bulk_stops_at_its_cap_while_automation_keeps_its_share(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    assert admitted(gate, "bulk", 7) == 5
    assert admitted(gate, "automation", 9) == 3  # automation and bulk together: 8
    assert admitted(gate, "interactive", 3) == 2


def test_bulk_is_held_to_the_shared_part_when_automation_has_used_it(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    assert admitted(gate, "automation", 6) == 6
    assert admitted(gate, "bulk", 5) == 2


def test_a_refused_lane_is_told_when_to_retry_and_which_share_it_may_use(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    admitted(gate, "bulk", 5)
    with pytest.raises(RateLimitedError) as caught:
        gate.acquire(time.monotonic(), "bulk")
    assert caught.value.retry_after_s is not None and 55 < caught.value.retry_after_s <= 61.5
    assert "the bulk lane may use 5 a minute" in caught.value.message
    assert "Retry after" in caught.value.message


def test_with_lanes_off_every_lane_is_admitted_as_before_lanes(make_gate: GateFactory) -> None:
    gate = make_gate(TEN._replace(reserve_percent=0, bulk_percent=100))
    assert admitted(gate, "bulk", 7) == 7
    assert admitted(gate, "automation", 4) == 3
    assert admitted(gate, "interactive") == 0


def test_a_429s_pause_stops_every_lane_the_interactive_one_too(make_gate: GateFactory) -> None:
    gate = make_gate(TEN)
    gate.pause(30.0)
    for lane in ("interactive", "automation", "bulk"):
        with pytest.raises(RateLimitedError) as caught:
            gate.acquire(time.monotonic() + 1.0, lane)  # type: ignore[arg-type]
        assert "429" in caught.value.message


def test_the_hour_window_has_its_own_reserve_and_cap(make_gate: GateFactory) -> None:
    # 4 a minute (reserve 1, bulk 2) and 6 an hour (reserve 1, bulk 3); a minute lasts 0.3 s, an hour 6.2 s.
    budget = Budget(per_minute=4, per_hour=6, time_scale=600.0, margin_api_s=0.0, margin_floor_real_s=0.2,
                    reserve_percent=10, bulk_percent=50)
    assert len(budget.rates()) == 2
    gate = make_gate(budget)
    started = time.monotonic()
    assert admitted(gate, "bulk", 3) == 2  # the minute's bulk cap
    assert admitted(gate, "automation", 2) == 1  # the minute's shared part: 3
    time.sleep(max(0.0, started + 0.35 - time.monotonic()))  # the minute has passed; the hour holds 3
    assert admitted(gate, "bulk", 2) == 1  # the hour's bulk cap: 3
    assert admitted(gate, "automation", 2) == 1  # the hour's shared part: 5
    assert admitted(gate, "interactive", 2) == 1  # the hour's reserve, and its whole limit: 6
    assert time.monotonic() - started < 6.0, "the test ran past its hour: the machine is too busy"
    with pytest.raises(RateLimitedError) as caught:
        gate.acquire(time.monotonic(), "interactive")
    assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 0.5  # the hour, not the minute


def test_acquire_says_how_long_it_waited_for_a_slot(make_gate: GateFactory) -> None:
    budget = Budget(per_minute=2, per_hour=1500, time_scale=600.0, margin_api_s=0.0, margin_floor_real_s=0.2,
                    reserve_percent=0, bulk_percent=100)
    gate = make_gate(budget)
    assert gate.acquire(time.monotonic() + 5, "automation") == 0.0
    assert gate.acquire(time.monotonic() + 5, "automation") == 0.0
    waited = gate.acquire(time.monotonic() + 5, "automation")
    assert 0.1 < waited < 0.5  # the minute (0.1 s + 0.2 s margin) had to pass for the third call


def test_a_sqlite_log_written_before_lanes_gets_its_lane_column_and_its_calls_count_as_automation(
        tmp_path: Path) -> None:
    import sqlite3

    from connector.ratelimit import gate_id

    path = tmp_path / "ratelimit.sqlite3"
    now_ms = int(time.time() * 1000)
    with sqlite3.connect(path) as conn:  # the log as the version before lanes wrote it
        conn.execute("CREATE TABLE rate_log (gate TEXT NOT NULL, at_ms INTEGER NOT NULL)")
        conn.execute("CREATE INDEX rate_log_by_time ON rate_log (gate, at_ms)")
        conn.executemany("INSERT INTO rate_log VALUES (?, ?)", [(gate_id(TENANT, CLIENT), now_ms)] * 8)
    conn.close()
    gate = SqliteRateGate(path, TEN, TENANT, CLIENT, SqliteStateStore(tmp_path / "state.sqlite3"))
    assert admitted(gate, "automation") == 0  # the eight old calls fill automation's share
    assert admitted(gate, "interactive", 3) == 2
    with sqlite3.connect(path) as conn:
        lanes = sorted(row[0] for row in conn.execute("SELECT lane FROM rate_log"))
    conn.close()
    assert lanes == [0, 0] + [1] * 8


# -- processes of every lane at once --------------------------------------------------------------------

def test_processes_of_all_three_lanes_keep_every_window_under_the_limit_and_each_lanes_share(
        shared: dict[str, Any], workers: Any) -> None:
    from tests.storm.test_ratelimit import FAST, gate, max_in_any_window

    # 20 a minute (a real second, + 0.2 s margin): reserve 20% = 4, automation and bulk 16, bulk 10.
    budget = {**FAST, "reserve_percent": 20, "bulk_percent": 50}
    gate(shared, reserve_percent=20, bulk_percent=50)  # create the log before the race
    spec = {**shared, "budget": budget, "seconds": 3.4, "start_at": time.time() + 5.0}
    lanes = ["automation", "automation", "bulk", "bulk", "interactive"]
    # Playbooks and searches hammer; a person asks every 0.4 s (3 a window: within the reserve), waiting
    # 0.05 s at most each time.
    person = {"pace_s": 0.4, "wait_s": 0.05}
    answers = workers.run("hammer", [{**spec, "lane": lane, **(person if lane == "interactive" else {})}
                                     for lane in lanes])
    assert all(answer["on_time"] for answer in answers), "a worker started after the common start: machine too busy"
    by_lane = {lane: sorted(t for answer, its in zip(answers, lanes, strict=True) if its == lane
                            for t in answer["admitted"]) for lane in set(lanes)}
    everything = sorted(t for times in by_lane.values() for t in times)
    # Windows open at 0, 1.2 and 2.4 s: three of them in 3.4 s.
    assert max_in_any_window(everything, 1.0) <= 20
    assert max_in_any_window(by_lane["automation"] + by_lane["bulk"], 1.0) <= 16
    assert max_in_any_window(by_lane["bulk"], 1.0) <= 10
    assert len(by_lane["automation"]) + len(by_lane["bulk"]) == 3 * 16  # their part of every window, to the full
    assert len(by_lane["automation"]) >= 3 * (16 - 10)  # bulk never took more than its cap
    assert answers[lanes.index("interactive")]["rate_limited"] == 0  # the person always found the reserve free
    assert len(by_lane["interactive"]) >= 8
    print(f"\nadmitted per lane in three windows: { {lane: len(t) for lane, t in sorted(by_lane.items())} }")
