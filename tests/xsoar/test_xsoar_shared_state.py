"""State that outlives XSOAR's one-container-per-command: the integration context, updated with versions.

The context double (xsoar_runner.FileContext) refuses a write naming a stale version, as XSOAR does,
so these tests fail if the integration ever overwrites what another container wrote in between.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from xsoar_helpers import finish, read_context, run_command, xsoar_params

PER_MINUTE = 5
TIME_SCALE = 60.0
"""A 60 s window lasts 1 s of real time (the gate adds its 0.25 s real-time margin)."""


def result_entries(context_file: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for key, raw in read_context(context_file).items():
        if key.startswith("mde-ipstats/result:"):
            entry = json.loads(base64.b64decode(json.loads(raw)["v"]))
            found[entry["data"]["ipAddress"]] = entry["data"]
    return found


def admissions(context_file: Path) -> list[int]:
    """The rate-limit ledger's stamps across every version the context ever had (the ledger itself
    forgets calls older than its longest window)."""
    stamps: set[int] = set()
    for line in context_file.with_suffix(".history").read_text(encoding="utf-8").splitlines():
        for key, raw in json.loads(line).items():
            if key.startswith("mde-ipstats-rate/"):
                stamps.update(json.loads(raw)["calls"])
    return sorted(stamps)


def test_two_concurrent_commands_keep_the_shared_rate_limit_and_every_cache_entry(
        make_emulator: Any, tmp_path: Path) -> None:
    # The server allows one call more than the gate's budget: it sees calls when they arrive, and on a
    # loaded machine one call may arrive late by more than the gate's 0.25 s margin. Two gates that did
    # not share the ledger would admit 10 a window; the exact proof is the admission log below.
    emu = make_emulator(now=None, time_scale=TIME_SCALE, rate_limits=((PER_MINUTE + 1, 60.0),),
                        token_lifetime_s=3600.0 * TIME_SCALE)
    context_file = tmp_path / "context.json"
    ips = emu.org.sample_ips(12, seen=True)
    params = xsoar_params(emu, rate_limit_per_minute=str(PER_MINUTE), rate_limit_time_scale=str(TIME_SCALE))

    started = [run_command("mde-get-ip-statistics", params, {"ip": ",".join(half)}, context_file, start=True,
                           context_latency_s=0.03)
               for half in (ips[:6], ips[6:])]
    runs = [finish(process, out_file) for process, out_file in started]

    for run in runs:
        assert run.crashed is None and run.errors == [], [e.get("HumanReadable") for e in run.errors]
    counters = emu.counters()
    assert counters["http_429"] == 0
    assert counters["api_calls"] == 12
    assert counters["token_requests"] == 1  # one container signed in, the other waited and reused it
    times = sorted(entry["time"] for entry in emu.request_log() if entry["route"] == "api")
    assert times[-1] - times[0] >= 2 * 60.0 / TIME_SCALE  # 12 calls at 5 a window span at least two windows

    admitted = admissions(context_file)  # every call either gate admitted, from every context version
    assert len(admitted) == 12
    window_ms = (60.0 / TIME_SCALE + 0.25) * 1000  # the gate's window: 1 s plus its 0.25 s margin
    assert all(admitted[i + PER_MINUTE] - admitted[i] >= window_ms for i in range(len(admitted) - PER_MINUTE))
    refused = context_file.with_suffix(".refused")
    assert refused.exists() and int(refused.read_text()) > 0  # the two really wrote over each other's reads

    assert set(result_entries(context_file)) == set(ips)  # no cache entry lost to a concurrent write
    again = run_command("mde-get-ip-statistics", params, {"ip": ",".join(ips)}, context_file)
    rows = again.entries[0]["EntryContext"]["MDE.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"]
    assert [row["Cached"] for row in rows] == [True] * 12
    assert emu.counters()["api_calls"] == 12


@pytest.mark.redis
def test_with_store_backend_redis_tokens_and_answers_live_in_redis_not_the_context(
        fresh_emu: Any, tmp_path: Path, redis_url: str) -> None:
    context_file = tmp_path / "context.json"
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    params = xsoar_params(fresh_emu, store_backend="redis", store_url={"identifier": "", "password": redis_url})
    first = run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    assert first.errors == [], [e.get("HumanReadable") for e in first.errors]
    tokens = fresh_emu.counters()["token_requests"]
    second = run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    [row] = second.entries[0]["EntryContext"]["MDE.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"]
    assert row["Cached"] is True
    assert fresh_emu.counters()["token_requests"] == tokens  # the token came from Redis
    assert not context_file.exists() or not any(k.startswith("mde-ipstats") for k in read_context(context_file))
