"""Redis unreachable, dying mid-storm, or restarted empty (issue 22, cases 2 and 3).

A private redis-server is killed with SIGKILL while worker processes run lookups through
``connector.run`` against the emulator, then started again on its port, empty (it keeps nothing on
disk). With ``store_unavailable: local`` no lookup fails: the ones made while Redis is away say
``degraded`` and why, and every worker is back on Redis within ``store_retry_s`` of its return. With
``fail``, a lookup fails as ``unavailable`` and makes no API call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from connector import run
from emulator import Emulator
from tests.reliability.helpers import config_for, seen_ips
from tests.reliability.redis_chaos import collect, ended, killable_redis, start_lookup_workers

pytestmark = pytest.mark.redis

TIME_SCALE = 60.0
"""A minute of Defender's rate limit lasts a second: the storm runs into the limit within the test."""
RETRY_S = 0.5


def storm_emulator(make_emulator: Any) -> Emulator:
    """Compressed rate-limit windows; a token still lives an hour of real time (MSAL renews one with
    under five real minutes left, which a compressed hour would always be)."""
    emu: Emulator = make_emulator(time_scale=TIME_SCALE, token_lifetime_s=3600 * TIME_SCALE)
    return emu


def storm_config(emu: Emulator, redis_url: str, **overrides: Any) -> dict[str, Any]:
    return config_for(emu, store_backend="redis", store_url=redis_url, store_retry_s=RETRY_S,
                      rate_limit_time_scale=TIME_SCALE, item_budget_s=20, timeout_s=5, **overrides)


def worker_specs(emu: Emulator, config: dict[str, Any], tmp_path: Path, workers: int,
                 seconds: float) -> tuple[list[dict[str, Any]], float]:
    ips = seen_ips(emu, 40)
    start_at = time.time() + 1.5  # every worker imported and waiting
    specs = [{"config": config, "state_dir": str(tmp_path / "state"), "ips": ips[n::workers],
              "start_at": start_at, "until": start_at + seconds, "stop_file": str(tmp_path / "stop"),
              "max_lookups": 50_000}
             for n in range(workers)]
    return specs, start_at


def test_redis_killed_mid_storm_lookups_go_on_degraded_and_return_to_redis(make_emulator: Any,
                                                                           tmp_path: Path) -> None:
    emu = storm_emulator(make_emulator)
    with killable_redis() as server:
        specs, start_at = worker_specs(emu, storm_config(emu, server.url), tmp_path, workers=3, seconds=30.0)
        procs = start_lookup_workers(specs, tmp_path / "out")
        time.sleep(max(0.0, start_at + 1.5 - time.time()))
        killed_at = time.time()
        server.kill()
        time.sleep(1.5)
        server.start()
        back_at = time.time()
        time.sleep(RETRY_S + 2.0)
        (tmp_path / "stop").touch()
        outputs = collect(procs, timeout_s=60)
        keys_after = [key.decode() for key in server.client().keys("mde-ipstats:*")]

    results = [r for output in outputs for r in output]
    assert all(r["status"] == "success" for r in results), [r for r in results if r["status"] != "success"][:3]
    during = [r for r in results if r["began"] > killed_at + 0.2 and r["done"] < back_at]
    assert during and all(r["degraded"] for r in during)
    assert all(any("Redis" in w and "degraded" in w for w in r["warnings"]) for r in during)
    assert not any(r["degraded"] for r in results if r["done"] < killed_at)
    for output in outputs:  # each worker is on Redis again within the retry interval (and a lookup)
        again = [r for r in output if r["began"] > back_at + RETRY_S + 0.5]
        assert again and not any(r["degraded"] for r in again)
    assert any(":rate:" in key for key in keys_after)  # the restarted, empty Redis holds the log again
    assert emu.counters()["api_calls"] >= len(results) * 0.9  # the cache is off: lookups were calls


@pytest.mark.parametrize("how", ["flushed", "killed_and_restarted"])
def test_redis_restarted_empty_mid_storm_no_lookup_fails(make_emulator: Any, tmp_path: Path, how: str) -> None:
    emu = storm_emulator(make_emulator)
    with killable_redis() as server:
        specs, start_at = worker_specs(emu, storm_config(emu, server.url, cache_ttl_s=600), tmp_path, workers=3,
                                       seconds=30.0)
        procs = start_lookup_workers(specs, tmp_path / "out")
        time.sleep(max(0.0, start_at + 1.5 - time.time()))
        if how == "flushed":  # what a restart loses, without the gap: log, cache, tokens, locks, scripts
            server.client().flushall()
            server.client().script_flush()
        else:
            server.kill()
            server.start()
        emptied_at = time.time()
        time.sleep(5.0)  # room for the workers to come back and begin lookups on Redis, on a busy CI host
        (tmp_path / "stop").touch()
        outputs = collect(procs, timeout_s=60)
        keys_after = [key.decode() for key in server.client().keys("mde-ipstats:*")]

    results = [r for output in outputs for r in output]
    assert results and all(r["status"] == "success" for r in results)
    seen = [[(round(r["began"] - emptied_at, 2), round(r["done"] - emptied_at, 2), r["degraded"], r["warnings"][:1])
             for r in output[-6:]] for output in outputs]
    # The storm must still run after the restart, or the check below has nothing to look at: result-cache
    # hits take a few milliseconds, and a count bound (once 3000) ended workers before the window.
    assert ended(procs) == ["stop_file"] * len(procs), (ended(procs), [len(o) for o in outputs], seen)
    assert [r for r in results if r["began"] > emptied_at + 1.0 and not r["degraded"]], seen
    assert any(":rate:" in key for key in keys_after) and any(":kv:result:" in key for key in keys_after)


def test_store_unavailable_fail_gives_a_clear_unavailable_result_and_makes_no_call(emulator: Emulator,
                                                                                   tmp_path: Path) -> None:
    with killable_redis() as server:
        config = storm_config(emulator, server.url, store_unavailable="fail")
        assert run("get_ip_statistics", {"ip": "10.0.0.1"}, config, state_dir=tmp_path)[0].succeeded
        server.kill()
        calls_before = emulator.counters()["api_calls"]
        result = run("get_ip_statistics", {"ip": "10.0.0.2"}, config, state_dir=tmp_path)[0]
    assert result.status == "failed" and result.error is not None
    assert result.error.category == "unavailable"
    assert f"127.0.0.1:{server.port}" in result.message and "Redis" in result.message
    assert emulator.counters()["api_calls"] == calls_before
    assert not result.degraded


def test_redis_down_from_the_start_with_local_every_result_says_degraded(emulator: Emulator, tmp_path: Path) -> None:
    with killable_redis() as server:
        server.kill()
        config = storm_config(emulator, server.url)
        results = run("get_ip_statistics", {"ip": "10.0.0.1, 10.0.0.2"}, config, state_dir=tmp_path)
    assert [r.status for r in results] == ["success", "success"]
    assert all(r.degraded and r.warnings and "unreachable" in r.warnings[0] for r in results)
    assert (tmp_path / "state.sqlite3").exists() and (tmp_path / "ratelimit.sqlite3").exists()
