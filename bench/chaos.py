"""Chaos benchmark: the alert storm calm, then again while its own infrastructure and Defender fail.

    python bench/alert_storm.py --chaos                 # sqlite and redis, calm and chaos, side by side
    python bench/alert_storm.py --chaos --quick --json  # a small storm in about a minute and a half

The storm is bench/alert_storm.py's (N lookups over D distinct IPs, W worker processes, Defender's limits
compressed in time). Each store is run twice against a fresh emulator: calm, and with three faults
while the storm runs, at fixed shares of the storm's lower bound T (real seconds):

- at 0.25 T, one worker process is killed with SIGKILL (a crashed action run): the lookup it had in
  flight is lost (counted as ``lost``), the others carry on with the queue;
- at 0.40 T, with Redis, redis-server itself is killed with SIGKILL and started again, empty, on the
  same port 0.2 T later (REDIS_DOWN_SHARE; at least REDIS_DOWN_MIN_REAL_S, longer than the Redis
  client's own reconnection attempts): the workers go on with their host's own SQLite state (results say
  ``degraded``) and return to Redis when it answers (``store_unavailable: local``, the default);
- at 0.75 T, Defender is down for OUTAGE_API_S (every API call answers 503): the shared breaker opens
  after ``breaker_threshold`` failures in a row, lookups then fail at once as ``unavailable`` and make
  no call, and one probe per interval finds the service back.

Figures per run, as alert_storm.py prints them (failed lookups, 429s, API calls, makespan), plus what
each fault cost: lookups lost with the killed worker, lookups answered degraded, lookups failed by
category. Redis is always a private redis-server started here (one this run may kill), never
``--redis-url``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.alert_storm import (  # noqa: E402  (the path above first)
    _fmt,
    clear_connector_keys,
    parse_args,
    report,
    run_configuration,
    scratch_redis,
)

KILL_WORKER_AT, KILL_REDIS_AT, OUTAGE_AT = 0.25, 0.40, 0.75
"""When each fault strikes, as a share of the storm's lower bound."""
REDIS_DOWN_SHARE, REDIS_DOWN_MIN_REAL_S = 0.20, 10.0
OUTAGE_API_S = 60.0
"""A minute of Defender answering 503 (in API seconds: divided by the time scale)."""
SCRIPT = ROOT / "scripts" / "start-redis.sh"
CONFIGURATIONS = ("sqlite", "redis")


def _at(start_at: float, bound_real_s: float, share: float) -> None:
    time.sleep(max(0.0, start_at + share * bound_real_s - time.time()))


def _event(what: str, start_at: float, time_scale: float, **detail: Any) -> dict[str, Any]:
    return {"event": what, "at_api_s": round((time.time() - start_at) * time_scale, 1), **detail}


def faults(store: str, redis_url: str | None, time_scale: float) -> Callable[..., list[dict[str, Any]]]:
    """The faults of one chaos run, in order, for run_configuration's ``during``."""

    def inflict(emu: Any, out_dir: Path, start_at: float, bound_real_s: float) -> list[dict[str, Any]]:
        from emulator import Fault

        events = []
        _at(start_at, bound_real_s, KILL_WORKER_AT)
        victim = sorted(out_dir.glob("ready-*"))[0]
        os.kill(int(victim.read_text()), signal.SIGKILL)
        events.append(_event("worker killed (SIGKILL)", start_at, time_scale, worker=victim.name[len("ready-"):]))
        if store == "redis":
            assert redis_url is not None
            _at(start_at, bound_real_s, KILL_REDIS_AT)
            subprocess.run([str(SCRIPT), "kill", redis_url], capture_output=True, timeout=30, check=True)
            events.append(_event("redis-server killed (SIGKILL)", start_at, time_scale))
            time.sleep(max(REDIS_DOWN_MIN_REAL_S, REDIS_DOWN_SHARE * bound_real_s))
            port = redis_url.rsplit(":", 1)[1].split("/")[0]
            subprocess.run([str(SCRIPT), "start", port], capture_output=True, timeout=60, check=True)
            events.append(_event("redis-server started again, empty", start_at, time_scale))
        _at(start_at, bound_real_s, OUTAGE_AT)
        emu.inject_fault(Fault(route="api", status=503), count=None)
        events.append(_event("Defender down (every call 503)", start_at, time_scale))
        time.sleep(OUTAGE_API_S / time_scale)
        emu.clear_faults()
        events.append(_event("Defender back", start_at, time_scale))
        return events

    return inflict


def run_pair(store: str, args: argparse.Namespace, redis_url: str | None) -> dict[str, dict[str, Any]]:
    """The same storm calm and under the faults, each against a fresh emulator and state."""
    runs = {}
    for mode in ("calm", "chaos"):
        if redis_url is not None:
            clear_connector_keys(redis_url)
        print(f"running {store} {mode} ...", file=sys.stderr, flush=True)
        during = faults(store, redis_url, args.time_scale) if mode == "chaos" else None
        row = run_configuration(store, args, redis_url, during=during)
        row["lost"] = row["failed"] - sum(row["errors"].values())  # no outcome at all: the killed worker's
        runs[f"{store} {mode}"] = row
    return runs


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    rows = [("lookups", "lookups"), ("failed lookups", "failed"), ("  of them lost with the killed worker", "lost"),
            ("answered degraded (Redis away)", "degraded_answers"),
            ("429 received", "http_429"), ("API calls", "api_calls"), ("token requests", "token_requests"),
            ("makespan, API s", "makespan_api_s"), ("makespan / lower bound", "makespan_ratio")]
    names = list(results)
    print(f"Chaos: {args.lookups} lookups over {args.distinct} distinct IPs, {args.workers} worker processes, "
          f"time x{args.time_scale:g}; a worker killed at {KILL_WORKER_AT:g} T, Redis killed at {KILL_REDIS_AT:g} T "
          f"and back {REDIS_DOWN_SHARE:g} T later, Defender down {OUTAGE_API_S:g} API s from {OUTAGE_AT:g} T "
          "(T: the storm's lower bound)")
    print(f"{'':40}" + "".join(f"{n:>15}" for n in names))
    for label, key in rows:
        print(f"{label:40}" + "".join(f"{_fmt(results[n].get(key)):>15}" for n in names))
    for name in names:
        if results[name]["errors"]:
            print(f"{name} failures by category: {results[name]['errors']}")
        for event in results[name].get("events", []):
            print(f"{name}: {event['at_api_s']:>7} API s  {event['event']}")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(argv if argv is not None else sys.argv[1:])
    if "--only" not in " ".join(words):
        words += ["--only", ",".join(CONFIGURATIONS)]
    args = parse_args(words)
    if unknown := set(args.only) - set(CONFIGURATIONS):
        raise SystemExit(f"--chaos runs {', '.join(CONFIGURATIONS)} only, not {', '.join(sorted(unknown))}")
    results: dict[str, dict[str, Any]] = {}
    with scratch_redis("redis" in args.only) as redis_url:  # always a private one: this run kills it
        for store in args.only:
            results.update(run_pair(store, args, redis_url if store == "redis" else None))
    return report(results, args, print_table)


if __name__ == "__main__":
    sys.exit(main())
