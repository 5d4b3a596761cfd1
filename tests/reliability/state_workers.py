"""Worker processes for the local-state fault tests (run as a script, one JSON line out).

    python tests/reliability/state_workers.py COMMAND '{"config": {...}, "state_dir": "/tmp/x", ...}'

Each command is one SOAR action process's part in a fault: a lookup batch, or a process that takes
SQLite's write lock on a state file, or a rate slot, and then waits to be killed.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connector import run
from connector.ratelimit import open_rate_gate
from connector.settings import Settings


def wait_for_start(spec: dict[str, Any]) -> None:
    delay = float(spec.get("start_at", 0.0)) - time.time()
    if delay > 0:
        time.sleep(delay)


def lookup(spec: dict[str, Any]) -> Any:
    """One action run over spec["ips"]: each result's status, category, warnings, and the run's seconds."""
    wait_for_start(spec)
    started = time.monotonic()
    results = run("get_ip_statistics", {"ip": ",".join(spec["ips"]), "lookback_hours": 24}, spec["config"],
                  state_dir=Path(spec["state_dir"]))
    return {"seconds": time.monotonic() - started, "ended_at": time.time(),
            "results": [{"status": r.status, "category": r.error.category.value if r.error else None,
                         "message": r.message, "warnings": r.warnings,
                         "cached": r.cached} for r in results]}


def hold_write_lock(spec: dict[str, Any]) -> Any:
    """Take SQLite's write lock on a state file (BEGIN IMMEDIATE), say so, and hold it until killed."""
    conn = sqlite3.connect(Path(spec["state_dir"]) / spec["file"], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    time.sleep(float(spec.get("hold_s", 60.0)))
    return None


def admit_and_hang(spec: dict[str, Any]) -> Any:
    """Be admitted by the rate gate for spec["calls"] calls, say so, then hang (as a call in flight) until killed."""
    gate = open_rate_gate(Settings.load(spec["config"]), Path(spec["state_dir"]))
    for _ in range(int(spec["calls"])):
        gate.acquire(time.monotonic() + 30.0)
    print("admitted", flush=True)
    time.sleep(float(spec.get("hold_s", 60.0)))
    return None


COMMANDS = {f.__name__.replace("_", "-"): f for f in (lookup, hold_write_lock, admit_and_hang)}

if __name__ == "__main__":
    answer = COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))
    print(json.dumps(answer), flush=True)
