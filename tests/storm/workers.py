"""Separate worker processes for the cross-process tests (run as a script, one JSON line out).

    python tests/storm/workers.py COMMAND '{"backend": "sqlite", "where": "/tmp/x", ...}'

Each command is what one SOAR action process would do to the shared state; the tests start several
at once and check what they did together.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connector.cache import ResultCache
from connector.ratelimit import Budget, RedisRateGate, SqliteRateGate
from connector.state import StateStore
from connector.stores import RedisStateStore, SqliteStateStore

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"


def store_for(spec: dict[str, Any]) -> StateStore:
    lease_s = float(spec.get("lease_s", 30.0))
    if spec["backend"] == "redis":
        return RedisStateStore(spec["where"], spec["namespace"], lease_s=lease_s)
    return SqliteStateStore(Path(spec["where"]) / "state.sqlite3", lease_s=lease_s)


class FileClock:
    """The wall clock plus an offset (seconds) the test writes into a file: how a test steps the clock
    of every worker process at once, mid-storm (read at each call, as a real clock step is seen)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def __call__(self) -> float:
        try:
            return time.time() + float(self.path.read_text() or 0.0)
        except (OSError, ValueError):  # being rewritten: this instant's real time
            return time.time()


def gate_for(spec: dict[str, Any]) -> SqliteRateGate | RedisRateGate:
    budget = Budget(**spec["budget"])
    client = spec.get("client", CLIENT)
    if spec["backend"] == "redis":
        return RedisRateGate(spec["where"], budget, TENANT, client, namespace=spec["namespace"])
    clock = FileClock(spec["clock_file"]) if "clock_file" in spec else time.time
    return SqliteRateGate(Path(spec["where"]) / "ratelimit.sqlite3", budget, TENANT, client, store_for(spec),
                          clock=clock)


def wait_for_start(spec: dict[str, Any]) -> bool:
    """Line every worker up on one wall-clock instant, so they really compete; False if already late."""
    start_at = float(spec.get("start_at", 0.0))
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    return delay > 0


def hammer(spec: dict[str, Any]) -> Any:
    """Acquire as fast as the gate allows for spec['seconds'] (in spec['lane'], automation by default);
    report each admission's wall time. With spec['pace_s'], ask once every pace_s instead (a person
    clicking), each time willing to wait spec['wait_s'] at most, and go on after a refusal."""
    gate = gate_for(spec)
    on_time = wait_for_start(spec)
    # Every worker stops at the same instant, however late it started.
    stop = time.monotonic() + float(spec.get("start_at", time.time())) + float(spec["seconds"]) - time.time()
    admitted: list[float] = []
    failures = 0
    longest_wait = 0.0
    pace = spec.get("pace_s")
    from connector.errors import RateLimitedError

    tick = time.monotonic()
    while time.monotonic() < stop:
        if pace is not None:
            time.sleep(max(0.0, tick - time.monotonic()))
            tick += float(pace)
        asked = time.monotonic()
        try:
            gate.acquire(stop if pace is None else asked + float(spec["wait_s"]), spec.get("lane", "automation"))
        except RateLimitedError:
            failures += 1
            if pace is None:
                break
            continue
        longest_wait = max(longest_wait, time.monotonic() - asked)
        admitted.append(time.time())
    return {"admitted": admitted, "rate_limited": failures, "on_time": on_time, "longest_wait_s": longest_wait}


def lock_counter(spec: dict[str, Any]) -> Any:
    """Increment a shared counter spec['n'] times with an unprotected read-modify-write under the lock."""
    store = store_for(spec)
    wait_for_start(spec)
    for _ in range(int(spec["n"])):
        with store.lock("counter", timeout_s=30.0) as held:
            assert held
            value = int(store.get("counter") or b"0")
            time.sleep(0.001)
            store.set("counter", str(value + 1).encode())
    return {"done": True}


def hold_and_die(spec: dict[str, Any]) -> Any:
    """Take the lock, say so, and die without releasing it (a crashed action run)."""
    store = store_for(spec)
    lock = store.lock("crash", timeout_s=5.0)
    held = lock.__enter__()
    print(json.dumps({"held": held}), flush=True)
    time.sleep(float(spec.get("linger_s", 0.0)))
    os._exit(3)


def single_flight(spec: dict[str, Any]) -> Any:
    """The connector's lookup path with a fake fetch that counts itself in the store."""
    store = store_for(spec)
    cache = ResultCache(store, ttl_s=60.0, tenant_id=TENANT)
    wait_for_start(spec)
    fetched = False
    hit = cache.get(spec["ip"], 720)
    if hit is None:
        with cache.single_flight(spec["ip"], 720, timeout_s=30.0):
            hit = cache.get(spec["ip"], 720)
            if hit is None:
                with store.lock("fetch-counter", 30.0):
                    store.set("fetches", str(int(store.get("fetches") or b"0") + 1).encode())
                time.sleep(float(spec.get("fetch_s", 0.3)))
                cache.put(spec["ip"], 720, {"ipAddress": spec["ip"], "organizationPrevalence": 0})
                fetched = True
    return {"fetched": fetched, "cached": hit is not None}


def pause(spec: dict[str, Any]) -> Any:
    gate_for(spec).pause(float(spec["seconds"]))
    return {"paused": True}


def acquire_once(spec: dict[str, Any]) -> Any:
    gate = gate_for(spec)
    wait_for_start(spec)
    started = time.monotonic()
    from connector.errors import RateLimitedError

    try:
        gate.acquire(started + float(spec["budget_s"]))
    except RateLimitedError as exc:
        return {"waited_s": time.monotonic() - started, "retry_after_s": exc.retry_after_s}
    return {"waited_s": time.monotonic() - started, "retry_after_s": None}


COMMANDS = {f.__name__.replace("_", "-"): f for f in (hammer, lock_counter, hold_and_die, single_flight, pause,
                                                     acquire_once)}

if __name__ == "__main__":
    result = COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))
    print(json.dumps(result), flush=True)
