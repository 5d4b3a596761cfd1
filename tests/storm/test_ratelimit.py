"""The shared rate gate: every process together stays under the budget, waits when it can, fails fast
when it cannot, and pauses everyone after a 429."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from connector.errors import RateLimitedError
from connector.ratelimit import (
    KEEP_AT_LEAST_MS,
    MARGIN_API_S,
    MARGIN_FLOOR_REAL_S,
    Budget,
    MemoryRateGate,
    RedisRateGate,
    SqliteRateGate,
    UnlimitedGate,
    open_rate_gate,
)
from connector.settings import Settings
from connector.stores import SqliteStateStore

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"
OTHER_CLIENT = "99999999-2222-3333-4444-555555555555"

# A minute lasts one real second; windows get 0.2 s of margin. The tests count admissions in every
# sliding *nominal* second, as workers saw them: the margin leaves room for a worker to be descheduled
# between its admission and noting the time.
FAST = {"per_minute": 20, "per_hour": 1500, "time_scale": 60.0, "margin_api_s": 0.0, "margin_floor_real_s": 0.2}


def gate(shared: dict[str, Any], client: str = CLIENT, **budget: Any) -> SqliteRateGate | RedisRateGate:
    spec = Budget(**{**FAST, **budget})
    if shared["backend"] == "redis":
        return RedisRateGate(shared["where"], spec, TENANT, client, namespace=shared["namespace"])
    where = Path(shared["where"])
    return SqliteRateGate(where / "ratelimit.sqlite3", spec, TENANT, client, SqliteStateStore(where / "state.sqlite3"))


def max_in_any_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# -- the budget -------------------------------------------------------------------------------------

def test_the_margin_lengthens_the_windows_rather_than_lowering_the_counts() -> None:
    budget = Budget()
    minute, hour = budget.rates()
    assert (minute.limit, hour.limit) == (100, 1500)
    assert minute.interval == round((60 + MARGIN_API_S) * 1000)
    assert hour.interval == round((3600 + MARGIN_API_S) * 1000)


def test_under_time_compression_the_margin_keeps_a_floor_in_real_time() -> None:
    budget = Budget(time_scale=100.0)
    assert budget.margin_real_s == MARGIN_FLOOR_REAL_S
    assert budget.rates()[0].interval == round((0.6 + MARGIN_FLOOR_REAL_S) * 1000)


def test_an_hourly_limit_the_minute_limit_already_implies_is_dropped() -> None:
    rates = Budget(per_minute=10, per_hour=1500).rates()
    assert [(r.limit, r.interval) for r in rates] == [(10, 61_500)]


def test_a_minute_limit_the_hourly_limit_already_implies_is_dropped() -> None:
    rates = Budget(per_minute=100, per_hour=50).rates()
    assert [r.limit for r in rates] == [50]


def test_settings_set_the_budget() -> None:
    settings = Settings(tenant_id=TENANT, client_id=CLIENT, client_secret="x", rate_limit_per_minute=60,
                        rate_limit_per_hour=1000, rate_limit_time_scale=10.0)
    assert Budget.from_settings(settings) == Budget(60, 1000, 10.0, reserve_percent=10, bulk_percent=50)


# -- one process ------------------------------------------------------------------------------------

def test_calls_within_the_budget_pass_at_once_then_wait_for_the_window() -> None:
    gate = MemoryRateGate(Budget(**{**FAST, "per_minute": 3}))
    started = time.monotonic()
    for _ in range(3):
        gate.acquire(started + 5)
    assert time.monotonic() - started < 0.6  # well short of the 1.2 s a wait would take
    gate.acquire(started + 5)
    assert 1.15 <= time.monotonic() - started < 3.0


def test_a_slot_beyond_the_deadline_fails_at_once_saying_when_to_retry() -> None:
    gate = MemoryRateGate(Budget(**{**FAST, "per_minute": 2}))
    for _ in range(2):
        gate.acquire(time.monotonic() + 5)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        gate.acquire(started + 0.5)
    assert time.monotonic() - started < 0.3  # did not sit out the 0.5 s up to the deadline
    assert caught.value.retry_after_s is not None and 1.1 <= caught.value.retry_after_s <= 1.3
    assert "Retry after" in caught.value.message


def test_a_pause_delays_the_next_call_and_a_shorter_one_does_not_cut_it() -> None:
    gate = MemoryRateGate(Budget(**FAST))
    gate.pause(0.5)
    gate.pause(0.1)
    started = time.monotonic()
    gate.acquire(started + 5)
    assert 0.45 <= time.monotonic() - started < 1.5


def test_a_pause_beyond_the_deadline_fails_at_once() -> None:
    gate = MemoryRateGate(Budget(**FAST))
    gate.pause(3.0)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        gate.acquire(started + 0.5)
    assert time.monotonic() - started < 0.3  # did not sit out the 0.5 s up to the deadline
    assert caught.value.retry_after_s is not None and 2.5 < caught.value.retry_after_s <= 3.1
    assert "429" in caught.value.message


def test_the_unlimited_gate_admits_everything_and_records_pauses() -> None:
    gate = UnlimitedGate()
    for _ in range(1000):
        gate.acquire(time.monotonic())
    gate.pause(2.0)
    assert gate.pauses == [2.0]


def test_open_rate_gate_reuses_one_gate_per_application_in_a_process(tmp_path: Path) -> None:
    settings = Settings(tenant_id=TENANT, client_id=CLIENT, client_secret="x")
    first = open_rate_gate(settings, tmp_path)
    assert open_rate_gate(settings, tmp_path) is first
    assert isinstance(first, SqliteRateGate)
    other = Settings(tenant_id=TENANT, client_id=OTHER_CLIENT, client_secret="x")
    assert open_rate_gate(other, tmp_path) is not first
    memory = Settings(tenant_id=TENANT, client_id=CLIENT, client_secret="x", store_backend="memory")
    assert isinstance(open_rate_gate(memory, tmp_path), MemoryRateGate)


# -- shared by processes (SQLite: one host; Redis: any number of hosts) -----------------------------

def test_processes_hammering_one_gate_stay_under_the_limit_in_every_sliding_window(
        shared: dict[str, Any], workers: Any) -> None:
    gate(shared)  # create the bucket before the race
    spec = {**shared, "budget": FAST, "seconds": 3.4, "start_at": time.time() + 5.0}
    answers = workers.run("hammer", [spec] * 6)
    assert all(answer["on_time"] for answer in answers), "a worker started after the common start: machine too busy"
    admitted = [t for answer in answers for t in answer["admitted"]]
    # 20 per (1 s + 0.2 s margin): windows open at 0, 1.2, 2.4 s (and 3.6 s, after the end).
    assert max_in_any_window(admitted, 1.0) <= 20
    assert len(admitted) == 60
    assert sum(1 for answer in answers if answer["admitted"]) >= 2, "only one process ever got a slot"


def test_processes_share_the_hourly_budget_and_then_fail_fast(shared: dict[str, Any], workers: Any) -> None:
    budget = {**FAST, "per_minute": 10, "per_hour": 15}  # an "hour" lasts 60 s here
    gate(shared, **{k: v for k, v in budget.items() if k in ("per_minute", "per_hour")})
    spec = {**shared, "budget": budget, "seconds": 2.5, "start_at": time.time() + 5.0}
    started = time.monotonic()
    answers = workers.run("hammer", [spec] * 4)
    admitted = [t for answer in answers for t in answer["admitted"]]
    assert len(admitted) == 15
    assert max_in_any_window(admitted, 1.0) <= 10
    assert all(answer["rate_limited"] == 1 for answer in answers), "each worker should give up, not wait 58 s"
    assert time.monotonic() - started < 20


def test_a_pause_in_one_process_holds_back_the_others(shared: dict[str, Any], workers: Any) -> None:
    start_at = time.time() + 2.5
    base = {**shared, "budget": FAST, "start_at": start_at}
    procs = [workers.start("acquire-once", {**base, "budget_s": 5.0}),
             workers.start("acquire-once", {**base, "budget_s": 0.3})]
    time.sleep(max(0.0, start_at - 0.5 - time.time()))
    gate(shared).pause(1.5)  # a 429 seen here, 0.5 s before the others make their call
    waiting, failing = (json.loads(proc.communicate(timeout=30)[0].splitlines()[-1]) for proc in procs)
    assert waiting["retry_after_s"] is None
    assert 0.8 < waiting["waited_s"] < 1.3
    assert failing["retry_after_s"] is not None and 0.8 < failing["retry_after_s"] <= 1.1
    assert failing["waited_s"] < 0.1


def test_different_applications_have_separate_budgets(shared: dict[str, Any]) -> None:
    mine, theirs = gate(shared, per_minute=2), gate(shared, client=OTHER_CLIENT, per_minute=2)
    deadline = time.monotonic() + 0.2
    for _ in range(2):
        mine.acquire(deadline)
        theirs.acquire(deadline)
    with pytest.raises(RateLimitedError):
        mine.acquire(deadline)


# -- Redis specifics ----------------------------------------------------------------------------------

def test_a_redis_server_that_forgot_the_script_is_given_it_again(redis_url: str, namespace: str) -> None:
    import redis

    spec = Budget(**{**FAST, "per_minute": 2})
    gate = RedisRateGate(redis_url, spec, TENANT, CLIENT, namespace=namespace)
    gate.acquire(time.monotonic() + 0.2)
    redis.Redis.from_url(redis_url).script_flush()  # what a restart does: scripts are not persisted
    gate.acquire(time.monotonic() + 0.2)
    with pytest.raises(RateLimitedError):  # the two calls were both counted
        gate.acquire(time.monotonic() + 0.2)


def test_the_redis_log_expires_after_defenders_hour(redis_url: str, namespace: str) -> None:
    import redis

    spec = Budget(**FAST)
    gate = RedisRateGate(redis_url, spec, TENANT, CLIENT, namespace=namespace)
    gate.acquire(time.monotonic() + 0.2)
    client = redis.Redis.from_url(redis_url)
    logs = sorted(client.keys(f"{namespace}:rate:*"), key=len)  # the log, then its automation-and-bulk part
    assert len(logs) == 2 and client.zcard(logs[0]) == 1
    for log_key in logs:
        assert KEEP_AT_LEAST_MS < client.pttl(log_key) <= KEEP_AT_LEAST_MS + 1000  # an hour, whatever this budget


def test_processes_opening_a_new_gate_at_once_all_get_in(shared: dict[str, Any], workers: Any) -> None:
    # No gate is opened beforehand: the workers race to create the rate log (SQLite: file, table, WAL).
    budget = {**FAST, "time_scale": 6.0}  # a 10.2 s window: the six calls are still in it when counted below
    spec = {**shared, "budget": budget, "budget_s": 5.0, "start_at": time.time() + 3.0}
    answers = workers.run("acquire-once", [spec] * 6)
    assert [answer["retry_after_s"] for answer in answers] == [None] * 6
    with pytest.raises(RateLimitedError):  # all six were counted: 14 more fill the window of 20
        rest = gate(shared, time_scale=6.0)
        deadline = time.monotonic() + 0.1
        for _ in range(15):
            rest.acquire(deadline)
    if shared["backend"] == "sqlite":
        import sqlite3

        with sqlite3.connect(Path(shared["where"]) / "ratelimit.sqlite3") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
