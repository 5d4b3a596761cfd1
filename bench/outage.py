"""Outage benchmark: a steady alert storm through a five-minute Defender outage, breaker on and off.

    python bench/outage.py                 # 1 lookup per second, 8 workers, 60 s calm, 300 s outage, 180 s after
    python bench/outage.py --json          # the same figures as one JSON object
    python bench/outage.py --time-scale 10 --store redis --redis-url redis://127.0.0.1:6379/0

Lookups arrive at a steady rate (one distinct IP each, so every lookup is a call; the result cache is
off), dealt in turn to W worker processes that answer them one after the other, each a call of
``connector.run`` as a SOAR action run would make it, sharing one state directory (or Redis). After a
calm spell the emulator answers every API call 503 (a fault with ``count: null``) for the outage, then
serves normally again. The run is done twice against a fresh emulator and state: with the breaker on
(the defaults: 10 failed calls in a row open it, one probe every 30 s) and off (``breaker_threshold``
0: each lookup retries up to its 6 calls, as before issue 22).

Everything runs ``--time-scale`` times faster than real (20 by default): the outage, the calm and the
after, the emulator's and the connector's rate-limit windows, ``item_budget_s`` (120 s), ``timeout_s``
(30 s), the probe interval and the retry backoff (its base, cap and floor, set in each worker process);
figures are given back in the service's seconds (real seconds times the time scale).

Figures, per run: API calls that reached the emulator during the outage; worker time spent on lookups
during the outage (busy worker-seconds, and the share of the workers' time); lookups that failed, and
how long a failed lookup took (median); seconds from the end of the outage to normal service: from the
moment the outage ends to the arrival of the first lookup from which on every lookup succeeds within
NORMAL_LATENCY_S of its arrival (no backlog, no error; NORMAL_LATENCY_FLOOR_REAL_S at the least), null
when that never happens before the run ends; and the 429s the emulator sent.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NORMAL_LATENCY_S = 10.0
"""A lookup answered within this many (service) seconds of its arrival is normal service (a lookup
takes milliseconds; a backlog, or a rate log the outage's retries filled, makes them wait tens of
seconds)..."""
NORMAL_LATENCY_FLOOR_REAL_S = 0.25
"""...or within this many real seconds: the machine's hiccups (a busy core, a garbage collection) are
not compressed with the run."""
START_DELAY_S = 4.0
"""Real seconds for the worker processes to start and import before the first arrival."""
DEFAULT_TIME_SCALE = 20.0
SERVICE_TIMES = {"item_budget_s": 120.0, "timeout_s": 30.0, "breaker_probe_interval_s": 30.0}
"""The connector's durations at their defaults, in service seconds: divided by the time scale."""


# -- one worker process -----------------------------------------------------------------------------

def compress_backoff(time_scale: float) -> None:
    """The retry backoff (base, cap, floor) shrunk like every other duration of the run."""
    from connector import retry

    retry.BACKOFF_BASE_S /= time_scale
    retry.BACKOFF_CAP_S /= time_scale
    retry.RETRY_FLOOR_S /= time_scale


def count_api_attempts() -> list[float]:
    """When this process hands each API call to the transport: the calls that never reach a server (the
    connection refused) are counted too, which the emulator's log cannot see."""
    import requests.adapters

    attempts: list[float] = []
    send = requests.adapters.HTTPAdapter.send

    def counted(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if "/api/ips/" in (request.url or ""):
            attempts.append(time.time())
        return send(adapter, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counted  # type: ignore[method-assign]
    return attempts


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Answer spec["lookups"] ([real seconds after start_at, ip] each) one after the other, each not
    before its arrival: when each began and ended, and its result; and when each API call was sent.
    A bounded loop (the list)."""
    from connector import run

    logging.basicConfig(level=logging.ERROR)  # the breaker's warnings are the run's figures, not its output
    if spec.get("time_scale"):
        compress_backoff(float(spec["time_scale"]))
    attempts = count_api_attempts()
    records = []
    for arrival, ip in spec["lookups"]:
        delay = spec["start_at"] + arrival - time.time()
        if delay > 0:
            time.sleep(delay)
        began = time.time()
        [result] = run("get_ip_statistics", {"ip": ip, "lookback_hours": 24}, spec["config"],
                       state_dir=Path(spec["state_dir"]))
        error = result.error
        records.append({"ip": ip, "arrival": spec["start_at"] + arrival, "began": began, "ended": time.time(),
                        "status": result.status, "category": error.category.value if error else None,
                        "code": error.code if error else None, "retry_after_s": error.retry_after_s if error else None,
                        "message": result.message if error else None})
    return {"records": records, "attempts": attempts}


# -- one run against a fresh emulator ---------------------------------------------------------------

def run_once(breaker_on: bool, args: argparse.Namespace) -> dict[str, Any]:
    from emulator import Emulator, EmulatorConfig, Fault

    scale = args.time_scale
    with Emulator(EmulatorConfig(time_scale=scale, seed=args.seed, token_lifetime_s=3600.0 * scale)) as emu, \
            tempfile.TemporaryDirectory(prefix="outage-bench-") as work:
        phases = (args.calm_s, args.outage_s, args.after_s)
        count = round(sum(phases) * args.rate)
        ips = [ip for ip in emu.org.sample_ips(count + 50, seen=True)][:count]
        config: dict[str, Any] = {**emu.connector_config(app="reader", auth="secret"), "cache_ttl_s": 0,
                                  "rate_limit_time_scale": scale,
                                  **{name: value / scale for name, value in SERVICE_TIMES.items()}}
        if not breaker_on:
            config["breaker_threshold"] = 0
        if args.store == "redis":
            config.update(store_backend="redis", store_url=args.redis_url)
        arrivals = [[i / args.rate / scale, ip] for i, ip in enumerate(ips)]
        start_at = time.time() + START_DELAY_S
        procs = []
        for number in range(args.workers):
            spec = {"lookups": arrivals[number::args.workers], "start_at": start_at, "config": config,
                    "state_dir": str(Path(work) / "state"), "time_scale": scale}
            spec_path = Path(work) / f"worker-{number}.json"
            spec_path.write_text(json.dumps(spec))
            spec_path.chmod(0o600)  # it holds the emulator's client secret
            procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "worker", f"@{spec_path}"],
                                          stdout=subprocess.PIPE, text=True, cwd=str(ROOT)))
        try:
            outage_from = start_at + args.calm_s / scale
            outage_to = outage_from + args.outage_s / scale
            time.sleep(max(0.0, outage_from - time.time()))
            emu.inject_fault(Fault(route="api", status=503), count=None)
            time.sleep(max(0.0, outage_to - time.time()))
            emu.clear_faults()
            records = []
            for proc in procs:
                out, _ = proc.communicate(timeout=sum(phases) / scale + 300)
                if proc.returncode != 0:
                    raise RuntimeError("a worker process failed")
                records.extend(json.loads(out.strip().splitlines()[-1])["records"])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        log = [entry for entry in emu.request_log() if entry["route"] == "api"]
        if args.dump:
            Path(args.dump).with_suffix(f".{'on' if breaker_on else 'off'}.json").write_text(json.dumps(
                {"outage_from": outage_from, "outage_to": outage_to, "records": records, "log": log}))
        return figures(records, log, emu.counters(), outage_from, outage_to, args)


def figures(records: list[dict[str, Any]], log: list[dict[str, Any]], counters: dict[str, Any],
            outage_from: float, outage_to: float, args: argparse.Namespace) -> dict[str, Any]:
    scale = args.time_scale
    during = [e for e in log if outage_from <= e["time"] <= outage_to + 0.05]
    busy = sum(max(0.0, min(r["ended"], outage_to) - max(r["began"], outage_from)) for r in records)
    failed = [r for r in records if r["status"] != "success"]
    by_arrival = sorted(records, key=lambda r: r["arrival"])
    normal_from = None
    normal_s = max(NORMAL_LATENCY_S / scale, NORMAL_LATENCY_FLOOR_REAL_S)
    for record in reversed(by_arrival):
        if record["status"] != "success" or record["ended"] - record["arrival"] > normal_s:
            break
        normal_from = record["arrival"]
    categories: dict[str, int] = {}
    for record in failed:
        label = f"{record['category']}/{record['code']}" if record["code"] else str(record["category"])
        categories[label] = categories.get(label, 0) + 1
    circuit = [r for r in failed if r["code"] == "CircuitOpen"]
    return {
        "lookups": len(records),
        "calls_during_outage": len(during),
        "calls_total": len(log),
        "http_429": counters["http_429"],
        "worker_busy_s": round(busy * scale, 1),
        "worker_busy_share": round(busy / (args.workers * (outage_to - outage_from)), 3),
        "failed": len(failed),
        "failed_by": categories,
        "failed_median_s": round(statistics.median((r["ended"] - r["began"]) * scale for r in failed), 3)
        if failed else None,
        "retry_after_s_max": round(max((r["retry_after_s"] or 0.0) for r in circuit) * scale, 1) if circuit else None,
        "recovery_s": None if normal_from is None else round(max(0.0, normal_from - outage_to) * scale, 1),
        "example_message": circuit[0]["message"] if circuit else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1.0, help="lookups arriving per service second")
    parser.add_argument("--calm-s", type=float, default=60.0)
    parser.add_argument("--outage-s", type=float, default=300.0)
    parser.add_argument("--after-s", type=float, default=180.0)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--redis-url")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dump", help="write each run's records and API log to DUMP.on.json / DUMP.off.json")
    args = parser.parse_args(argv)
    if args.store == "redis" and not args.redis_url:
        parser.error("--store redis needs --redis-url")
    results = {"breaker_on": run_once(True, args), "breaker_off": run_once(False, args)}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.workers} workers, {args.rate:g} lookup/s, {args.calm_s:g} s calm, {args.outage_s:g} s of 503s, "
          f"{args.after_s:g} s after; store {args.store}; time x{args.time_scale:g} (service seconds below)")
    rows = [("lookups", "lookups"), ("API calls during the outage", "calls_during_outage"),
            ("API calls in all", "calls_total"), ("429s", "http_429"),
            ("worker time during the outage (s)", "worker_busy_s"),
            ("  share of the workers' time", "worker_busy_share"),
            ("failed lookups", "failed"), ("  by category/code", "failed_by"),
            ("  median time to fail (s)", "failed_median_s"), ("  largest retry_after_s", "retry_after_s_max"),
            ("outage end to normal service (s)", "recovery_s")]
    print(f"{'':36}{'breaker on':>34}  {'breaker off':>36}")
    for label, key in rows:
        on, off = results["breaker_on"][key], results["breaker_off"][key]
        print(f"{label:36}{json.dumps(on):>34}  {json.dumps(off):>36}")
    if results["breaker_on"]["example_message"]:
        print(f"\nA lookup during the outage, breaker on: {results['breaker_on']['example_message']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        source = sys.argv[2]
        spec = json.loads(Path(source[1:]).read_text() if source.startswith("@") else source)
        print(json.dumps(worker(spec)), flush=True)
        sys.exit(0)
    sys.exit(main())
