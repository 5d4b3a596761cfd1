"""Issue 22, case 8: Defender down for a while (every call 503, or the connection refused) in a storm.

Four worker processes (bench/outage.py's worker: each lookup a call of connector.run, as SOAR action
runs make them) answer a steady stream of lookups, one distinct IP each, sharing one state directory
(or Redis), against the emulator over HTTPS with real MSAL. The outage is the emulator's fault API
(a 503 with ``count: None`` answers every API call until cleared) or a port where nothing listens
(connection refused) until a forwarder to the emulator opens on it. The breaker's threshold is its
default (10 failed calls in a row), its probe interval half a second; the workers' retry backoff runs
5 times faster, so that the run of failures comes early in the short outage.

What must hold: the API calls made during the outage are bounded by the threshold, the calls already
in flight when it opened and one probe per interval (far fewer than the lookups, each of which may
make 6); a lookup while it is open fails at once as unavailable, with retry_after_s no longer than an
interval and a message a person can act on; every lookup is answered; and service returns within
about one interval after the outage ends. bench/outage.py measures the same storm through five
minutes, breaker on and off.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator, Fault

from .helpers import SwitchableForwarder, config_for, finish, seen_ips, start_state_worker

OUTAGE_BENCH = Path(__file__).resolve().parents[2] / "bench" / "outage.py"
WORKERS = 4
EVERY_S = 0.05
"""A lookup arrives every 50 ms (20 a second, dealt to the workers in turn)."""
CALM_S, OUTAGE_S, AFTER_S = 0.5, 2.5, 2.2
INTERVAL_S = 0.5
THRESHOLD = 10
SCALE = 100.0
"""The emulator's and the gate's time compression: Defender's 100 calls a minute become 100 in 0.6 s,
so the storm's 20 lookups a second never wait for the rate limit."""
BACKOFF_SCALE = 5.0
"""The workers' retry backoff runs this much faster (base 0.1 s, cap 1.6 s): the run of failures that
opens the breaker comes within a fraction of the outage, even on a busy machine."""
STARTUP_S = 2.5
FAIL_FAST_S = 0.5
"""A lookup refused by the open breaker ends within this (it opens the stores and reads one key)."""
SLACK_S = 1.0
"""Room for a busy machine: the lookup arriving just after a due probe may start late."""


def storm_config(emu: Emulator, **overrides: Any) -> dict[str, Any]:
    return config_for(emu, rate_limit_time_scale=SCALE, item_budget_s=3.0, timeout_s=1.0,
                      breaker_probe_interval_s=INTERVAL_S, **overrides)


def run_storm(emu: Emulator, config: dict[str, Any], state: Path, *, outage_starts: Any,
              outage_ends: Any) -> tuple[list[dict[str, Any]], list[float], float, float]:
    """The storm through the outage: every worker's records, when the workers sent each API call during
    the outage (connects refused included), and when the outage began and ended."""
    phases = CALM_S + OUTAGE_S + AFTER_S
    ips = seen_ips(emu, round(phases / EVERY_S))
    start_at = time.time() + STARTUP_S
    arrivals = [[i * EVERY_S, ip] for i, ip in enumerate(ips)]
    procs = [start_state_worker("worker", {"lookups": arrivals[n::WORKERS], "start_at": start_at, "config": config,
                                           "state_dir": str(state), "time_scale": BACKOFF_SCALE}, script=OUTAGE_BENCH)
             for n in range(WORKERS)]
    time.sleep(max(0.0, start_at + CALM_S - time.time()))
    began = time.time()  # before the fault, as ended is after it: every faulted call lies between
    outage_starts()
    time.sleep(max(0.0, began + OUTAGE_S - time.time()))
    outage_ends()
    ended = time.time()
    answers = [finish(proc, timeout_s=60.0) for proc in procs]
    records = [r for answer in answers for r in answer["records"]]
    assert sorted(r["ip"] for r in records) == sorted(ips), "every lookup is answered, once"
    calls_during = sorted(at for answer in answers for at in answer["attempts"] if began <= at <= ended)
    return records, calls_during, began, ended


def check_the_outage(records: list[dict[str, Any]], calls: list[float], began: float, ended: float,
                     label: str) -> None:
    calls_during = len(calls)
    during = [r for r in records if began <= r["arrival"] < ended]
    opened = [r for r in records if r["code"] == "CircuitOpen"]
    assert opened, "the breaker never opened"
    # Every lookup begun once it was open, while the outage lasted (but for the last moments, when a probe
    # may go after the fault is cleared), is refused: not only the ones whose own failures opened it.
    opened_at = min(o["ended"] for o in opened)
    refused = [r for r in records if opened_at <= r["began"] < ended - 0.3]
    probes = math.ceil((ended - began) / INTERVAL_S) + 1
    bound = THRESHOLD + WORKERS + probes
    print(f"\n{label}: {calls_during} API calls during a {ended - began:.1f} s outage (bound {bound}) for "
          f"{len(during)} lookups; {len(refused)} refused at once by the open breaker")
    assert calls_during <= bound
    # Once open (and the calls already sent then answered), one call per interval: the probe.
    probes_sent = [at for at in calls if at > opened_at + 0.3]
    gaps = [later - earlier for earlier, later in itertools.pairwise(probes_sent)]
    assert all(gap >= INTERVAL_S - 0.05 for gap in gaps), gaps
    assert calls_during < len(during)  # fewer calls than lookups, where each lookup alone may make 6
    assert len(refused) >= 5, "too few lookups met the open breaker to tell"
    for record in refused:
        assert record["status"] == "failed" and record["category"] == "unavailable", record
        assert record["code"] == "CircuitOpen", record
        assert record["ended"] - record["began"] < FAIL_FAST_S, record
        assert 0 < record["retry_after_s"] <= INTERVAL_S + 0.1, record
        message = record["message"]
        assert "calls in a row failed" in message and f"retry after {record['retry_after_s']:g} s" in message
        assert "mde-ipstats" not in message  # the core names no platform's commands
    calm = [r for r in records if r["ended"] < began]  # (a busy machine may start a calm lookup late)
    assert all(r["status"] == "success" for r in calm), [r for r in calm if r["status"] != "success"]
    # Service returns within about one probe interval of the outage's end, and stays.
    back = [r for r in records if r["status"] == "success" and r["began"] >= ended]
    assert back, "no lookup succeeded after the outage"
    first_back = min(r["ended"] for r in back) - ended
    print(f"{label}: the first lookup succeeded {first_back:.2f} s after the outage ended "
          f"(probe interval {INTERVAL_S} s)")
    assert first_back <= INTERVAL_S + SLACK_S
    late = [r for r in records if r["arrival"] >= ended + INTERVAL_S + SLACK_S]
    assert late and all(r["status"] == "success" for r in late), [r for r in late if r["status"] != "success"]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_503_outage_costs_a_bounded_number_of_calls_and_fails_lookups_fast(
        make_emulator: Any, tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    emu = make_emulator(time_scale=SCALE, token_lifetime_s=3600.0 * SCALE)
    extra = {"store_backend": "redis", "store_url": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    records, calls_during, began, ended = run_storm(
        emu, storm_config(emu, **extra), tmp_path / "state",
        outage_starts=lambda: emu.inject_fault(Fault(route="api", status=503), count=None),
        outage_ends=emu.clear_faults)
    faulted = [e for e in emu.request_log() if e["route"] == "api" and e["fault"]]
    assert len(faulted) <= len(calls_during)  # the emulator saw what the workers sent
    check_the_outage(records, calls_during, began, ended, f"503 ({backend})")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_opens_the_breaker_too_and_service_returns_when_the_port_answers(
        make_emulator: Any, tmp_path: Path) -> None:
    emu = make_emulator(time_scale=SCALE, token_lifetime_s=3600.0 * SCALE)
    upstream, port = int(emu.base_url.rsplit(":", 1)[1]), free_port()
    path: list[SwitchableForwarder] = [SwitchableForwarder(upstream, max_connections=256, port=port)]
    def refuse() -> None:  # the API's port closes: every connect is refused
        path.pop().close()

    def answer() -> None:  # the API's port opens again
        path.append(SwitchableForwarder(upstream, max_connections=256, port=port))

    try:
        records, calls_during, began, ended = run_storm(
            emu, storm_config(emu, api_url=f"https://127.0.0.1:{port}"), tmp_path / "state", outage_starts=refuse,
            outage_ends=answer)
    finally:
        for forwarder in path:
            with contextlib.suppress(Exception):
                forwarder.close()
    network = [r for r in records if r["category"] == "network"]
    assert all("ConnectionError" in r["message"] for r in network), network
    check_the_outage(records, calls_during, began, ended, "connection refused")
