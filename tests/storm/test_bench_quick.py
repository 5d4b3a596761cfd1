"""The alert-storm benchmark's quick mode: its figures hold the connector's invariants.

Speed is the benchmark's business (it prints ratios); this test only checks what must always be true:
every lookup answered, no 429 provoked, one API call per distinct (IP, look-back) pair, one token.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"lookups", "distinct", "api_calls", "http_429", "failed", "token_requests", "makespan_ratio"}


def test_a_quick_storm_is_answered_in_full_with_one_call_per_distinct_ip_and_no_429(redis_url: str) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "alert_storm.py"), "--quick", "--json",
                          "--redis-url", redis_url], capture_output=True, text=True, timeout=240, cwd=ROOT,
                         check=False)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert set(figures) == {"sqlite", "redis", "naive"}
    for name, row in figures.items():
        assert set(row) >= KEYS, name
        assert row["lookups"] == 300 and row["distinct"] == 150
    for name in ("sqlite", "redis"):
        row = figures[name]
        assert row["failed"] == 0, (name, row["errors"])
        assert row["http_429"] == 0, name
        assert row["api_calls"] == row["distinct"], name
        assert row["token_requests"] <= row["token_lifetimes"], name
    assert figures["redis"]["process_groups"] == 2
    assert figures["naive"]["api_calls"] >= figures["naive"]["lookups"]


def test_the_chaos_mode_accounts_for_every_lookup_through_a_killed_worker_redis_and_an_outage() -> None:
    """bench/alert_storm.py --chaos, small: the calm run loses nothing; under the faults, every lookup is
    answered or accounted for (at most the killed worker's one in flight is lost), the only failures are
    Defender's outage (unavailable), and the faults happened in their order."""
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "alert_storm.py"), "--chaos", "--quick", "--json",
                          "--only", "redis"], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    calm, chaos = figures["redis calm"], figures["redis chaos"]
    assert calm["failed"] == 0 and calm["http_429"] == 0 and calm["lost"] == 0
    assert chaos["lost"] <= 1
    assert set(chaos["errors"]) <= {"unavailable"}, chaos["errors"]
    assert chaos["failed"] == chaos["lost"] + sum(chaos["errors"].values())
    assert chaos["degraded_answers"] > 0  # lookups went on while Redis was away
    assert [event["event"].split(" (")[0] for event in chaos["events"]] == [
        "worker killed", "redis-server killed", "redis-server started again, empty", "Defender down", "Defender back"]
