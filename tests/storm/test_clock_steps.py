"""A wall-clock step back costs at most a window (a pause, a lease), never the size of the step.

Shared state is stamped with the wall clock, which can step back (NTP, a VM snapshot, an operator);
what was stamped before the step then lies in the future. The SQLite store and gate take a clock
(connector.clock.SteppedClock here); the Redis gate stamps with the server's own clock, which a test
cannot step, so its tests write what the server would hold after a step back: stamps an hour ahead.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from connector.cache import ResultCache
from connector.clock import SteppedClock
from connector.errors import RateLimitedError
from connector.ratelimit import Budget, PauseRecord, RedisRateGate, SqliteRateGate, gate_id
from connector.state import MemoryStateStore
from connector.stores import DEFAULT_LEASE_S, SqliteStateStore

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"
HOUR_MS = 3_600_000
BUDGET = Budget(per_minute=100, per_hour=1500)
MINUTE_WINDOW_S = 60.0 + BUDGET.margin_real_s


def sqlite_gate(where: Path, clock: SteppedClock) -> SqliteRateGate:
    return SqliteRateGate(where / "ratelimit.sqlite3", BUDGET, TENANT, CLIENT,
                          SqliteStateStore(where / "state.sqlite3", clock=clock), clock=clock)


def refusal(gate: Any) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as refused:
        gate.acquire(time.monotonic() + 0.2)
    return refused.value


def fill_the_minute(gate: Any) -> None:
    deadline = time.monotonic() + 30
    for _ in range(BUDGET.per_minute):
        gate.acquire(deadline)


def test_a_step_back_after_a_full_minute_costs_one_window_not_the_step(tmp_path: Path) -> None:
    clock = SteppedClock()
    gate = sqlite_gate(tmp_path, clock)
    fill_the_minute(gate)
    clock.step(-3600)
    refused = refusal(gate)
    assert refused.retry_after_s is not None
    # The 100 calls still count (they were made within the last minute) and leave the window one
    # window from now: refused for a window, not for the hour the clock went back.
    assert 60.0 < refused.retry_after_s <= MINUTE_WINDOW_S + 0.1, refused.retry_after_s


def test_calls_logged_an_hour_ahead_hold_the_window_for_one_window(shared: dict[str, Any]) -> None:
    """What a log holds after its clock stepped back an hour: 100 calls stamped an hour from now."""
    if shared["backend"] == "redis":
        import redis

        gate: Any = RedisRateGate(shared["where"], BUDGET, TENANT, CLIENT, namespace=shared["namespace"])
        client = redis.Redis.from_url(shared["where"])
        ahead = gate.now_ms() + HOUR_MS
        client.zadd(f"{shared['namespace']}:rate:{gate_id(TENANT, CLIENT)}",
                    {f"{ahead}:{n}": ahead for n in range(BUDGET.per_minute)})
    else:
        where = Path(shared["where"])
        where.mkdir(parents=True, exist_ok=True)
        gate = SqliteRateGate(where / "ratelimit.sqlite3", BUDGET, TENANT, CLIENT,
                              SqliteStateStore(where / "state.sqlite3"))
        gate.acquire(time.monotonic() + 1)  # creates the log
        ahead = gate.now_ms() + HOUR_MS
        with sqlite3.connect(where / "ratelimit.sqlite3") as conn:
            conn.executemany("INSERT INTO rate_log (gate, at_ms) VALUES (?, ?)",
                             [(gate_id(TENANT, CLIENT), ahead)] * BUDGET.per_minute)
    refused = refusal(gate)
    assert refused.retry_after_s is not None and refused.retry_after_s <= MINUTE_WINDOW_S + 0.1, refused


def test_a_pause_set_before_a_step_back_lasts_its_length_not_the_step(tmp_path: Path) -> None:
    clock = SteppedClock()
    gate = sqlite_gate(tmp_path, clock)
    gate.pause(10.0)
    clock.step(-3600)
    refused = refusal(gate)
    assert refused.retry_after_s is not None and 9.0 < refused.retry_after_s <= 10.0, refused.retry_after_s
    assert "429" in refused.message


def test_a_redis_pause_ending_further_ahead_than_its_length_restarts_now(redis_url: str, namespace: str) -> None:
    import redis

    gate = RedisRateGate(redis_url, BUDGET, TENANT, CLIENT, namespace=namespace)
    until = gate.now_ms() + HOUR_MS + 10_000  # a 10 s pause, set just before the server's clock went back an hour
    pause_key = f"{namespace}:kv:ratepause:{gate_id(TENANT, CLIENT)}"
    redis.Redis.from_url(redis_url).set(pause_key, PauseRecord(until, 10_000).encode(), px=HOUR_MS + 11_000)
    refused = refusal(gate)
    assert refused.retry_after_s is not None and 9.0 < refused.retry_after_s <= 10.0, refused.retry_after_s


def test_a_pause_within_its_length_is_kept_as_set(tmp_path: Path) -> None:
    clock = SteppedClock()
    gate = sqlite_gate(tmp_path, clock)
    gate.pause(30.0)
    clock.step(-0.5)  # within the tolerance: an ordinary adjustment, not a step
    refused = refusal(gate)
    assert refused.retry_after_s is not None and 30.0 < refused.retry_after_s <= 30.6


def test_an_answer_cached_later_than_now_is_a_miss(tmp_path: Path) -> None:
    clock = SteppedClock()
    cache = ResultCache(MemoryStateStore(), ttl_s=900, tenant_id=TENANT, clock=clock)
    cache.put("10.1.2.3", 720, {"ipAddress": "10.1.2.3"})
    assert cache.get("10.1.2.3", 720) is not None
    clock.step(-3600)
    assert cache.get("10.1.2.3", 720) is None  # its age cannot be told: not fresh for another hour


def test_an_answer_stored_an_hour_ahead_is_a_miss() -> None:
    """What the store holds after the clock stepped back an hour, read with the real clock."""
    store = MemoryStateStore()
    cache = ResultCache(store, ttl_s=900, tenant_id=TENANT)
    cache.put("10.1.2.3", 720, {"ipAddress": "10.1.2.3"})
    (key,) = store._values
    entry = json.loads(store.get(key) or b"")
    store.set(key, json.dumps({**entry, "stored_at": time.time() + 3600}).encode())
    assert cache.get("10.1.2.3", 720) is None


def test_a_lease_taken_before_a_step_back_outlives_its_holder_by_one_lease_at_most(tmp_path: Path) -> None:
    """A holder on another host (its PID unknowable) took the lock, then died; the clock went back an
    hour. Waiters get the lock once a lease has passed, not an hour and a lease later."""
    clock = SteppedClock()
    store = SqliteStateStore(tmp_path / "state.sqlite3", clock=clock)
    with store.lock("probe", 1.0):  # creates the table
        pass
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        conn.execute("INSERT INTO locks (name, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)",
                     ("flight", "gone", "another-host", 4242, clock() + DEFAULT_LEASE_S))
    clock.step(-3600)
    with store.lock("flight", 0.1) as held:
        assert not held  # the lease still runs
    clock.step(DEFAULT_LEASE_S + 2)
    with store.lock("flight", 0.1) as held:
        assert held
