"""Mixed-lanes benchmark: a playbook storm, a large SIEM search and an analyst share one rate limit.

    python bench/alert_storm.py --mixed                 # SQLite and Redis, lanes on and off (about 15 min)
    python bench/alert_storm.py --mixed --json          # the same figures as one JSON object
    python bench/alert_storm.py --mixed --quick         # a smaller, faster run (about 3 min)

Against a fresh emulator with Defender's limits (100 calls a minute, 1,500 an hour) under time
compression, three kinds of users start at once and share one state (one SQLite directory; or Redis,
with the storm split over two process groups that share nothing on disk):

- **the storm** (lane ``automation``): the alert-storm benchmark's playbook lookups (N lookups over D
  distinct IPs, Zipf-repeated), taken off a queue by W worker processes;
- **a search** (lane ``bulk``): B distinct IPs (2,000), each once, by a few worker processes, each
  lookup with the usual time budget (item_budget_s): once the bulk lane's share of the hour is spent,
  the rest fail at once as rate_limited (as a Splunk search's do once its max_wait_s cannot cover the wait);
- **an analyst** (lane ``interactive``): a fresh IP every 10 s of API time for the whole run.

Then the same with lanes off (interactive_reserve_percent 0, bulk_max_percent 100: one queue, as
before lanes). Per lane: lookups, failed, waits for a rate-limit slot (summary.lane_wait_s) p50/p95/max
in API seconds; the storm's makespan against the lower bound of the automation lane's share (what is
left of the limit when the reserve is kept and the search uses its whole cap: 40 a minute and 600 an
hour with the defaults; with lanes off, the whole limit); and Defender's 429s.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.alert_storm import (  # noqa: E402  (the path above first)
    LOOKBACK_HOURS,
    NOT_SEEN_SHARE,
    _fmt,
    clear_connector_keys,
    lower_bound_s,
    make_storm,
    report,
    scratch_redis,
)

DEFAULT_TIME_SCALE = 6.0
"""A minute lasts 10 s: the gate's 1.5 s safety margin is still 1.5 API seconds (its real-time floor,
0.25 s, binds only above x6), so the storm's share is what it would be at real time."""
CLICK_EVERY_API_S = 10.0
READY_TIMEOUT_S = 180.0
LANES_ON = {"interactive_reserve_percent": 10, "bulk_max_percent": 50}
LANES_OFF = {"interactive_reserve_percent": 0, "bulk_max_percent": 100}


@dataclass
class Job:
    """One worker process: its lane, its items (a queue shared with the other workers of its role, or the
    analyst's clicks, one every ``every_real_s``), where its state lives, and where it writes outcomes."""

    name: str
    lane: str
    items: list[str]
    config: dict[str, Any]
    state_dir: str
    out_dir: str
    every_real_s: float | None = None


def worker_main(job: Job, counter: Any, ready: Any, start_at: Any) -> None:
    import connector

    with ready.get_lock():
        ready.value += 1
    deadline = time.monotonic() + READY_TIMEOUT_S
    while start_at.value == 0.0:
        if time.monotonic() > deadline:
            raise SystemExit(f"{job.name}: no start signal")
        time.sleep(0.005)
    time.sleep(max(0.0, start_at.value - time.time()))
    outcomes: list[dict[str, Any]] = []
    clicks = iter(range(len(job.items)))
    while True:
        if job.every_real_s is None:
            with counter.get_lock():
                index = counter.value
                counter.value += 1
        else:
            index = next(clicks, len(job.items))
            time.sleep(max(0.0, start_at.value + index * job.every_real_s - time.time()))
        if index >= len(job.items):
            break
        began = time.time()
        try:
            params = {"ip": job.items[index], "lookback_hours": LOOKBACK_HOURS, "lane": job.lane}
            result = connector.run("get_ip_statistics", params, job.config, state_dir=Path(job.state_dir))[0]
            outcome = {"ok": result.status == "success", "cached": result.cached,
                       "error": None if result.error is None else result.error.category.value,
                       "wait_s": float(result.summary.get("lane_wait_s") or 0.0)}
        except Exception as exc:  # a crash is a failed lookup, and the run goes on
            traceback.print_exc()
            outcome = {"ok": False, "cached": False, "error": f"crash: {type(exc).__name__}", "wait_s": 0.0}
        outcome.update(lane=job.lane, began_at=began, done_at=time.time())
        outcomes.append(outcome)
    (Path(job.out_dir) / f"result-{job.name}.json").write_text(json.dumps(outcomes))


def automation_share(limits: Sequence[tuple[int, float]], reserve_percent: int | None = None,
                     bulk_percent: int = 100, bulk_busy: bool = False) -> list[tuple[int, float]]:
    """The part of each (limit, window) the automation lane is sure of: all but the interactive reserve
    (the configuration's default when not given), and, while a bulk search uses its whole cap, all but
    that cap too. With lanes off, the whole limit."""
    from connector.lanes import Shares
    from connector.settings import Settings

    if reserve_percent is None:
        reserve_percent = int(Settings.model_fields["interactive_reserve_percent"].default)
    share = []
    for limit, window in limits:
        shares = Shares.of(limit, reserve_percent, bulk_percent)
        share.append((shares.shared - shares.bulk if bulk_busy and shares.bulk < shares.shared else shares.shared,
                      window))
    return share


def run_scenario(store: str, lanes_name: str, args: argparse.Namespace, redis_url: str | None) -> dict[str, Any]:
    from emulator import Emulator, EmulatorConfig

    lanes = LANES_ON if lanes_name == "on" else LANES_OFF
    scale = args.time_scale
    clicks = math.ceil(args.duration_api_s / CLICK_EVERY_API_S)
    with Emulator(EmulatorConfig(time_scale=scale, seed=args.seed, token_lifetime_s=3600.0 * scale)) as emu:
        seen_total = args.distinct - round(args.distinct * NOT_SEEN_SHARE) + args.bulk + clicks
        seen = emu.org.sample_ips(seen_total, seen=True)
        unseen = emu.org.sample_ips(round(args.distinct * NOT_SEEN_SHARE), seen=False)
        storm_ips, seen = seen[:args.distinct - len(unseen)] + unseen, seen[args.distinct - len(unseen):]
        bulk_ips, analyst_ips = seen[:args.bulk], seen[args.bulk:args.bulk + clicks]
        storm = make_storm(storm_ips, args.lookups, args.seed)
        config: dict[str, Any] = {**emu.connector_config(app="reader", auth="secret"), **lanes,
                                  # The time budgets stay in real seconds (120, and the analyst's 15), as in the
                                  # storm benchmark: they bound waits and the calls' own network time alike.
                                  "rate_limit_time_scale": scale}
        groups = 1
        if store == "redis":
            assert redis_url is not None
            clear_connector_keys(redis_url)
            config.update(store_backend="redis", store_url=redis_url)
            groups = 2
        work = Path(tempfile.mkdtemp(prefix=f"lanes-{store}-{lanes_name}-"))
        (work / "out").mkdir()
        ctx = multiprocessing.get_context("spawn")
        ready, start_at = ctx.Value("i", 0), ctx.Value("d", 0.0)
        storm_queue, bulk_queue, clicks_counter = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0)

        def job(name: str, lane: str, items: list[str], group: int, every: float | None = None) -> Job:
            # Redis groups stand for separate hosts: nothing on disk is shared between them.
            state = work / ("state" if groups == 1 else f"state-{group}")
            return Job(name, lane, items, config, str(state), str(work / "out"), every)

        jobs = [(job(f"storm-{n}", "automation", storm, n % groups), storm_queue) for n in range(args.workers)]
        jobs += [(job(f"bulk-{n}", "bulk", bulk_ips, n % groups), bulk_queue) for n in range(args.bulk_workers)]
        jobs.append((job("analyst", "interactive", analyst_ips, 0, CLICK_EVERY_API_S / scale), clicks_counter))
        procs = [ctx.Process(target=worker_main, args=(j, queue, ready, start_at), name=j.name) for j, queue in jobs]
        try:
            for proc in procs:
                proc.start()
            deadline = time.monotonic() + READY_TIMEOUT_S
            while ready.value < len(procs):
                if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("the worker processes did not start")
                time.sleep(0.02)
            emu.reset_observations()
            go = time.time() + 0.2
            start_at.value = go
            limit_s = 120.0 + (args.duration_api_s + 3600.0) / scale
            for proc in procs:
                proc.join(max(1.0, go + limit_s - time.time()))
            outcomes = [o for f in sorted((work / "out").glob("result-*.json")) for o in json.loads(f.read_text())]
            counters = emu.counters()
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
                    proc.join(10)
            shutil.rmtree(work, ignore_errors=True)
    share = automation_share(emu.config.rate_limits, lanes["interactive_reserve_percent"], lanes["bulk_max_percent"],
                             bulk_busy=True)
    bound_s = lower_bound_s(len(set(storm)), share)
    return figures(outcomes, go, scale, bound_s, counters, expected={"automation": len(storm), "bulk": len(bulk_ips),
                                                                     "interactive": clicks})


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))] if ordered else 0.0


def figures(outcomes: list[dict[str, Any]], go: float, scale: float, bound_s: float, counters: dict[str, Any],
            expected: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {"http_429": counters["http_429"], "api_calls": counters["api_calls"]}
    for lane, count in expected.items():
        mine = [o for o in outcomes if o["lane"] == lane]
        waits = [o["wait_s"] * scale for o in mine]
        errors: dict[str, int] = {}
        for o in mine:
            if not o["ok"]:
                errors[o["error"]] = errors.get(o["error"], 0) + 1
        row: dict[str, Any] = {
            "lookups": count, "failed": sum(1 for o in mine if not o["ok"]) + (count - len(mine)),
            "wait_p50_api_s": round(_percentile(waits, 0.50), 2), "wait_p95_api_s": round(_percentile(waits, 0.95), 2),
            "wait_max_api_s": round(max(waits, default=0.0), 2), "errors": errors}
        if lane == "automation":
            makespan = (max((o["done_at"] for o in mine), default=go) - go) * scale
            row.update(makespan_api_s=round(makespan, 1), lower_bound_api_s=bound_s,
                       makespan_ratio=round(makespan / bound_s, 3) if bound_s > 0 else None)
        result[lane] = row
    return result


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"Mixed lanes: storm {args.lookups} lookups over {args.distinct} IPs ({args.workers} workers, automation), "
          f"search of {args.bulk} IPs ({args.bulk_workers} workers, bulk), an analyst every {CLICK_EVERY_API_S:g} s "
          f"for {args.duration_api_s:g} s (interactive); time x{args.time_scale:g}; API seconds")
    names = list(results)
    print(f"{'':34}" + "".join(f"{n:>16}" for n in names))
    rows: list[tuple[str, str | None, str]] = [
        (f"{lane} {label}", lane, key) for lane in ("interactive", "automation", "bulk")
        for label, key in (("lookups", "lookups"), ("failed", "failed"), ("wait p50", "wait_p50_api_s"),
                           ("wait p95", "wait_p95_api_s"), ("wait max", "wait_max_api_s"))]
    rows += [("storm makespan", "automation", "makespan_api_s"),
             ("automation share bound", "automation", "lower_bound_api_s"),
             ("storm makespan / bound", "automation", "makespan_ratio"),
             ("429s", None, "http_429"), ("API calls", None, "api_calls")]
    for label, lane, key in rows:
        cells = [(results[n][lane] if lane else results[n]).get(key) for n in names]
        print(f"{label:34}" + "".join(f"{_fmt(c):>16}" for c in cells))
    for name in names:
        pairs = [(lane, results[name][lane]["errors"]) for lane in ("interactive", "automation", "bulk")]
        failures = {lane: errors for lane, errors in pairs if errors}
        if failures:
            print(f"{name} failures: {failures}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="alert_storm.py --mixed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", "-n", type=int, default=3000)
    parser.add_argument("--distinct", "-d", type=int, default=400)
    parser.add_argument("--workers", "-w", type=int, default=8, help="storm worker processes")
    parser.add_argument("--bulk", type=int, default=2000, help="distinct IPs of the search")
    parser.add_argument("--bulk-workers", type=int, default=4)
    parser.add_argument("--duration-api-s", type=float, default=1200.0,
                        help="how long the analyst clicks, API seconds (default 1200: past the point, at 900 s, "
                             "where the search has spent the bulk lane's share of the hour)")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="sqlite,redis", help="comma-separated subset of: sqlite, redis")
    parser.add_argument("--lanes", default="on,off", help="comma-separated subset of: on, off")
    parser.add_argument("--redis-url", help="a scratch Redis to use (default: start a private redis-server)")
    parser.add_argument("--quick", action="store_true",
                        help="N=600, D=150, B=600, 480 API s of clicks, time x12 (a few minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.quick:
        args.lookups, args.distinct, args.bulk, args.duration_api_s, args.time_scale = 600, 150, 600, 480.0, 12.0
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.lanes = [s.strip() for s in args.lanes.split(",") if s.strip()]
    if set(args.only) - {"sqlite", "redis"} or set(args.lanes) - {"on", "off"}:
        parser.error("--only takes sqlite and/or redis, --lanes on and/or off")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    with scratch_redis("redis" in args.only, args.redis_url) as redis_url:
        for store in args.only:
            for lanes in args.lanes:
                print(f"running {store}, lanes {lanes} ...", file=sys.stderr, flush=True)
                results[f"{store} lanes {lanes}"] = run_scenario(store, lanes, args, redis_url)
    return report(results, args, print_table)
