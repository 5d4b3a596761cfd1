"""Alert-storm benchmark: replay a burst of IP lookups against the emulator, with Defender's real
limits under time compression, through the connector (SQLite on one host; Redis shared by two separate
process groups) and through a naive client (one request per lookup, retry on 429 only).

    python bench/alert_storm.py                 # N=3000 lookups, D=400 distinct IPs, W=8 workers
    python bench/alert_storm.py --json          # the same figures as one JSON object
    python bench/alert_storm.py --quick --json  # a small storm in seconds (used by the tests)
    python bench/alert_storm.py --mixed         # the storm, a bulk search and an analyst in lanes (bench/lanes.py)
    python bench/alert_storm.py --chaos         # calm, then with Redis, a worker and Defender failing (bench/chaos.py)

The storm: every one of D distinct IPs (three quarters seen in the organisation, a quarter never
seen) once, plus N - D draws from a Zipf distribution over them, shuffled. W worker processes take the
next lookup from a shared queue, one at a time, each lookup a separate call of the connector's public
entry point ``connector.run`` (like separate SOAR action runs sharing one state directory or Redis).

Figures: API calls, 429s, failed lookups and token requests are the emulator's own counters; the
makespan runs from the moment every worker is ready to the last answer, in API seconds (real seconds
times the time scale), and is given as a ratio of the lower bound: the shortest time in which the D
distinct calls fit Defender's limits (with 100 per sliding minute, call 101 cannot start before 60 s,
so 400 calls cannot finish before 180 s). Speed targets live here as printed ratios, not as timed test
assertions.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOOKBACK_HOURS = 720
NOT_SEEN_SHARE = 0.25
ZIPF_S = 1.1
CONFIGURATIONS = ("sqlite", "redis", "naive")
NAIVE_MAX_RETRIES = 3
NAIVE_ITEM_BUDGET_API_S = 120.0  # a naive client gives up on a Retry-After longer than this
READY_TIMEOUT_S = 180.0
DEFAULT_TIME_SCALE = 3.0
"""Compression shrinks the windows, not the CPU time a burst of lookups takes on the machine: the
overhead above the lower bound is a number of real seconds, so the stronger the compression, the
larger its share (at real time it would be about 1%). At 3x a minute lasts 20 s and the whole run
takes about seven minutes, most of it the naive client."""


# -- the storm --------------------------------------------------------------------------------------

def make_storm(ips: Sequence[str], lookups: int, seed: int) -> list[str]:
    """Each IP once, then Zipf draws (rank k weighs 1/k**s) over a shuffled ranking, all shuffled."""
    rng = random.Random(seed)
    ranked = list(ips)
    rng.shuffle(ranked)
    weights = [1.0 / (rank ** ZIPF_S) for rank in range(1, len(ranked) + 1)]
    storm = list(ranked) + rng.choices(ranked, weights=weights, k=max(0, lookups - len(ranked)))
    rng.shuffle(storm)
    return storm


def lower_bound_s(distinct: int, limits: Sequence[tuple[int, float]]) -> float:
    """Earliest time (API seconds after the first call) at which the last of `distinct` calls may start."""
    if distinct <= 0:
        return 0.0
    return max(((distinct - 1) // calls) * window for calls, window in limits)


# -- one worker process -----------------------------------------------------------------------------

@dataclass
class WorkerJob:
    mode: str                      # "connector" or "naive"
    storm: list[str]               # this group's share: the storm's lookups first, first+stride, ...
    first: int
    stride: int
    config: dict[str, Any]
    state_dir: str
    out_dir: str
    name: str
    time_scale: float
    naive: dict[str, str] = field(default_factory=dict)


def _wait_for_go(out_dir: Path, name: str) -> float:
    (out_dir / f"ready-{name}").write_text(str(os.getpid()))  # the pid: bench/chaos.py kills a worker
    deadline = time.monotonic() + READY_TIMEOUT_S
    go = out_dir / "go"
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: no start signal")
        time.sleep(0.005)
    start_at = float(go.read_text() or "0")
    time.sleep(max(0.0, start_at - time.time()))
    return start_at


def worker_main(job: WorkerJob, counter: Any) -> None:
    """Take lookups off the group's shared counter until the storm is done; write outcomes to a file."""
    out_dir = Path(job.out_dir)
    if job.mode == "connector":
        import connector

        def lookup(ip: str) -> dict[str, Any]:
            result = connector.run("get_ip_statistics", {"ip": ip, "lookback_hours": LOOKBACK_HOURS}, job.config,
                                   state_dir=Path(job.state_dir))[0]
            return {"ok": result.status == "success", "cached": result.cached, "degraded": result.degraded,
                    "error": None if result.error is None else result.error.category.value}
    else:
        lookup = _naive_client(job)
    _wait_for_go(out_dir, job.name)
    # One line per outcome, flushed: a worker killed mid-storm (bench/chaos.py) loses only its lookup in flight.
    results = (out_dir / f"result-{job.name}.jsonl").open("a", encoding="utf-8")
    while True:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        if index >= len(job.storm):
            break
        began = time.time()
        try:
            outcome = lookup(job.storm[index])
        except Exception as exc:  # a crash is a failed lookup, and the storm goes on
            traceback.print_exc()
            outcome = {"ok": False, "cached": False, "error": f"crash: {type(exc).__name__}: {exc}"}
        outcome.update(index=job.first + index * job.stride, began_at=began, done_at=time.time(),
                       worker=job.name)
        print(json.dumps(outcome), file=results, flush=True)
    results.close()


def _naive_client(job: WorkerJob) -> Any:
    """What public integrations do: a token once, one request per lookup, honour Retry-After on a 429
    up to a few retries, give up when told to wait longer than the item may take."""
    import requests

    session = requests.Session()
    ca = job.naive["ca_bundle"]  # per request: REQUESTS_CA_BUNDLE in the environment would beat session.verify
    token_state: dict[str, str] = {}

    def token() -> str:
        if "token" not in token_state:
            answer = session.post(job.naive["token_url"], data={
                "grant_type": "client_credentials", "client_id": job.naive["client_id"],
                "client_secret": job.naive["client_secret"], "scope": job.naive["scope"]}, timeout=30, verify=ca)
            answer.raise_for_status()
            token_state["token"] = answer.json()["access_token"]
        return token_state["token"]

    budget_real_s = NAIVE_ITEM_BUDGET_API_S / job.time_scale

    def lookup(ip: str) -> dict[str, Any]:
        url = f"{job.naive['api_url']}/api/ips/{ip}/stats"
        for _attempt in range(1 + NAIVE_MAX_RETRIES):
            answer = session.get(url, params={"lookBackHours": LOOKBACK_HOURS},
                                 headers={"Authorization": f"Bearer {token()}"}, timeout=30, verify=ca)
            if answer.status_code in (200, 404):
                return {"ok": True, "cached": False, "error": None}
            if answer.status_code != 429:
                return {"ok": False, "cached": False, "error": f"http {answer.status_code}"}
            wait = float(answer.headers.get("Retry-After", "1"))
            if wait > budget_real_s:
                break
            time.sleep(wait)
        return {"ok": False, "cached": False, "error": "rate_limited"}

    return lookup


# -- a process group: W/G workers sharing one queue (a stand-in for one SOAR host) -------------------

def group_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("i", 0)
    procs = []
    for number in range(spec["workers"]):
        job = WorkerJob(mode=spec["mode"], storm=spec["storm"], first=spec["first"], stride=spec["stride"],
                        config=spec["config"], state_dir=spec["state_dir"],
                        out_dir=spec["out_dir"], name=f"{spec['group']}-{number}", time_scale=spec["time_scale"],
                        naive=spec.get("naive", {}))
        proc = ctx.Process(target=worker_main, args=(job, counter), name=job.name)
        proc.start()
        procs.append(proc)
    deadline = time.monotonic() + spec["timeout_s"]
    failed = 0
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        failed += proc.exitcode != 0
    return 1 if failed else 0


# -- one configuration against a fresh emulator ------------------------------------------------------

def run_configuration(name: str, args: argparse.Namespace, redis_url: str | None,
                      during: Callable[[Any, Path, float, float], list[dict[str, Any]]] | None = None
                      ) -> dict[str, Any]:
    """One storm against a fresh emulator; ``during(emu, out_dir, start_at, bound_real_s)``, when given,
    runs while the storm does (bench/chaos.py's faults) and its events join the figures."""
    from emulator import Emulator, EmulatorConfig

    # Time compression is a device for the rate-limit windows; a token still lives an hour of real time
    # (MSAL renews a token with under five real minutes left, which a compressed hour would always be).
    token_lifetime_s = 3600.0 * args.time_scale
    with Emulator(EmulatorConfig(time_scale=args.time_scale, seed=args.seed,
                                 token_lifetime_s=token_lifetime_s)) as emu:
        distinct_not_seen = round(args.distinct * NOT_SEEN_SHARE)
        ips = (emu.org.sample_ips(args.distinct - distinct_not_seen, seen=True)
               + emu.org.sample_ips(distinct_not_seen, seen=False))
        storm = make_storm(ips, args.lookups, args.seed)
        base = emu.connector_config(app="reader", auth="secret")
        config: dict[str, Any] = dict(base, rate_limit_time_scale=args.time_scale)
        groups = 1
        if name == "redis":
            assert redis_url is not None
            config.update(store_backend="redis", store_url=redis_url)
            groups = 2
        work = Path(tempfile.mkdtemp(prefix=f"alert-storm-{name}-"))
        state_dir = work / "state"
        out_dir = work / "out"
        out_dir.mkdir()
        naive = {"token_url": f"{emu.login_url}/{base['tenant_id']}/oauth2/v2.0/token",
                 "client_id": base["client_id"], "client_secret": base["client_secret"], "scope": emu.scope,
                 "api_url": emu.api_url, "ca_bundle": emu.ca_path}
        limits = list(emu.config.rate_limits)
        # Playbooks run in the automation lane: the interactive reserve is not theirs (bench/lanes.py).
        from bench.lanes import automation_share

        bound_s = lower_bound_s(len(set(storm)), limits if name == "naive" else automation_share(limits))
        timeout_s = 60.0 + (bound_s * 3 + 7200.0 * (name == "naive")) / args.time_scale
        procs = []
        try:
            per_group = _split(args.workers, groups)
            for group in range(groups):
                spec = {"mode": "naive" if name == "naive" else "connector", "group": f"g{group}",
                        "storm": storm[group::groups], "first": group, "stride": groups,
                        "workers": per_group[group], "config": config,
                        # Redis groups stand for separate hosts: nothing on disk is shared between them.
                        "state_dir": str(state_dir if groups == 1 else work / f"state-{group}"),
                        "out_dir": str(out_dir), "time_scale": args.time_scale,
                        "timeout_s": timeout_s, "naive": naive if name == "naive" else {}}
                spec_path = work / f"group-{group}.json"
                spec_path.write_text(json.dumps(spec))
                spec_path.chmod(0o600)
                procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--group",
                                               str(spec_path)], cwd=str(ROOT)))
            _wait_ready(out_dir, args.workers, procs)
            emu.reset_observations()
            start_at = time.time() + 0.2
            (out_dir / "go").write_text(repr(start_at))
            events = during(emu, out_dir, start_at, bound_s / args.time_scale) if during is not None else []
            for proc in procs:
                proc.wait(timeout=timeout_s + 30)
            outcomes = [json.loads(line) for f in sorted(out_dir.glob("result-*.jsonl"))
                        for line in f.read_text().splitlines() if line]
            if os.environ.get("ALERT_STORM_DUMP"):
                Path(os.environ["ALERT_STORM_DUMP"]).write_text(json.dumps(
                    {"start_at": start_at, "storm": storm, "outcomes": outcomes, "log": emu.request_log()}))
            counters = emu.counters()
            log = emu.request_log()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            shutil.rmtree(work, ignore_errors=True)
        figures = _figures(name, storm, outcomes, counters, log, start_at, args, limits, bound_s, token_lifetime_s)
        return {**figures, "events": events} if during is not None else figures


def _split(workers: int, groups: int) -> list[int]:
    return [workers // groups + (1 if i < workers % groups else 0) for i in range(groups)]


def _wait_ready(out_dir: Path, workers: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while len(list(out_dir.glob("ready-*"))) < workers:
        if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError("the worker processes did not start")
        time.sleep(0.02)


def _figures(name: str, storm: list[str], outcomes: list[dict[str, Any]], counters: dict[str, Any],
             log: list[dict[str, Any]], start_at: float, args: argparse.Namespace,
             limits: list[tuple[int, float]], bound_s: float, token_lifetime_s: float) -> dict[str, Any]:
    answered = {o["index"] for o in outcomes}
    failed = sum(1 for o in outcomes if not o["ok"]) + (len(storm) - len(answered))
    makespan_real = (max(o["done_at"] for o in outcomes) - start_at) if outcomes else float("nan")
    makespan_api = makespan_real * args.time_scale
    errors: dict[str, int] = {}
    for o in outcomes:
        if not o["ok"]:
            errors[o["error"]] = errors.get(o["error"], 0) + 1
    return {
        "lookups": len(storm),
        "distinct": len(set(storm)),
        "api_calls": counters["api_calls"],
        "http_429": counters["http_429"],
        "failed": failed,
        "token_requests": counters["token_requests"],
        "makespan_ratio": round(makespan_api / bound_s, 3) if bound_s > 0 else None,
        "makespan_api_s": round(makespan_api, 1),
        "lower_bound_api_s": bound_s,
        "makespan_real_s": round(makespan_real, 2),
        "cached_answers": sum(1 for o in outcomes if o.get("cached")),
        "degraded_answers": sum(1 for o in outcomes if o.get("degraded")),
        "token_lifetimes": max(1, math.ceil(makespan_api / token_lifetime_s)),
        "tightest_window": _tightest_window(log, limits, args.time_scale),
        "errors": errors,
        "workers": args.workers,
        "process_groups": 2 if name == "redis" else 1,
        "time_scale": args.time_scale,
    }


def _tightest_window(log: list[dict[str, Any]], limits: list[tuple[int, float]], time_scale: float) -> float | None:
    """The shortest span, in API seconds, between an admitted call and the one `limit` calls later, as the
    server logged them: at least the window length means the limit was never at risk (the log's times
    are taken when each answer was recorded, so this is indicative to a few milliseconds)."""
    times = sorted(e["time"] for e in log if e["route"] == "api" and e["status"] != 429)
    spans = [(times[i + calls] - times[i]) * time_scale / window
             for calls, window in limits for i in range(len(times) - calls)]
    return round(min(spans), 4) if spans else None


# -- Redis for the benchmark -------------------------------------------------------------------------

def start_redis() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "start-redis.sh"), "start"], capture_output=True, text=True,
                         timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"could not start redis-server:\n{out.stderr}")
    return out.stdout.strip()


def stop_redis(url: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "start-redis.sh"), "stop", url], capture_output=True, timeout=60,
                   check=False)


@contextmanager
def scratch_redis(wanted: bool, given: str | None = None) -> Iterator[str | None]:
    """The Redis a run uses: the one given, else (when wanted) a private redis-server, stopped after."""
    if not wanted or given:
        yield given
        return
    url = start_redis()
    try:
        yield url
    finally:
        stop_redis(url)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace,
           table: Callable[[dict[str, dict[str, Any]], argparse.Namespace], None]) -> int:
    """The figures as one JSON object (--json) or as the benchmark's table."""
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        table(results, args)
    return 0


def clear_connector_keys(url: str) -> None:
    """Forget a previous run's cache, tokens and rate log (the connector's namespace only)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match="mde-ipstats:*", count=1000))
    if keys:
        client.delete(*keys)


# -- report ------------------------------------------------------------------------------------------

def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    rows = [("lookups", "lookups"), ("distinct (IP, look-back)", "distinct"), ("API calls", "api_calls"),
            ("429 received", "http_429"), ("failed lookups", "failed"), ("token requests", "token_requests"),
            ("answered from cache", "cached_answers"), ("makespan, API s", "makespan_api_s"),
            ("lower bound, API s", "lower_bound_api_s"), ("makespan / lower bound", "makespan_ratio"),
            ("tightest window / limit", "tightest_window"), ("makespan, real s", "makespan_real_s")]
    names = list(results)
    print(f"Alert storm: {args.lookups} lookups over {args.distinct} distinct IPs, {args.workers} worker "
          f"processes, time x{args.time_scale:g} (a minute lasts {60 / args.time_scale:g} s)")
    print(f"{'':28}" + "".join(f"{n:>14}" for n in names))
    for label, key in rows:
        print(f"{label:28}" + "".join(f"{_fmt(results[n].get(key)):>14}" for n in names))
    for n in names:
        if results[n]["errors"]:
            print(f"{n} failures: {results[n]['errors']}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookups", "-n", type=int, default=3000)
    parser.add_argument("--distinct", "-d", type=int, default=400)
    parser.add_argument("--workers", "-w", type=int, default=8)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                        help=f"emulated seconds per real second (default {DEFAULT_TIME_SCALE:g}: a minute lasts "
                             f"{60 / DEFAULT_TIME_SCALE:g} s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default=",".join(CONFIGURATIONS),
                        help="comma-separated subset of: " + ", ".join(CONFIGURATIONS))
    parser.add_argument("--redis-url", help="a scratch Redis to use (default: start a private redis-server)")
    parser.add_argument("--quick", action="store_true",
                        help="a small storm at high compression (seconds): N=300, D=150, W=4, time x30")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.lookups, args.distinct, args.workers, args.time_scale = 300, 150, 4, 30.0
    if not 1 <= args.distinct <= args.lookups:
        parser.error("need 1 <= distinct <= lookups")
    if args.workers < 1 or args.time_scale <= 0:
        parser.error("need at least one worker and a positive time scale")
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    if unknown := set(args.only) - set(CONFIGURATIONS):
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if "--mixed" in words:  # the lanes scenario: bench/lanes.py
        from bench.lanes import main as mixed_main

        return mixed_main([word for word in words if word != "--mixed"])
    if "--chaos" in words:  # the storm with its infrastructure failing: bench/chaos.py
        from bench.chaos import main as chaos_main

        return chaos_main([word for word in words if word != "--chaos"])
    args = parse_args(argv)
    if args.group:
        return group_main(args.group)
    results: dict[str, dict[str, Any]] = {}
    with scratch_redis("redis" in args.only, args.redis_url) as redis_url:
        for name in args.only:
            if name == "redis":
                assert redis_url is not None
                clear_connector_keys(redis_url)
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = run_configuration(name, args, redis_url)
    return report(results, args, print_table)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
