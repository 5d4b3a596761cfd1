"""One worker of a small storm, as a separate process: lookups through connector.run until told to stop.

    python tests/reliability/lookup_worker.py '{"config": {...}, "state_dir": "...", "ips": [...],
                                                "until": <wall time>, "stop_file": "...", "out": "...",
                                                "max_lookups": 400}'

Each lookup is a fresh ``connector.run`` (a SOAR action run); one JSON line per result goes to the
file ``out`` names, flushed, so a test reads what a worker saw even if the worker is killed (a pipe
would block the worker once full, until the test read it). The loop is bounded by a
wall-clock end, a stop file appearing and a count, whichever comes first.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(spec: dict[str, Any]) -> None:
    ips: list[str] = spec["ips"]
    until = float(spec["until"])
    start_at = float(spec.get("start_at", 0.0))
    time.sleep(max(0.0, start_at - time.time()))
    stop_file = Path(spec["stop_file"]) if spec.get("stop_file") else None
    with Path(spec["out"]).open("a", encoding="utf-8") as out:
        lookups(spec, ips, until, stop_file, out)


def lookups(spec: dict[str, Any], ips: list[str], until: float, stop_file: Path | None, out: Any) -> None:
    from connector import run

    ended = "max_lookups"
    for n in range(int(spec.get("max_lookups", 1000))):
        if time.time() >= until or (stop_file is not None and stop_file.exists()):
            ended = "until" if time.time() >= until else "stop_file"
            break
        began = time.time()
        result = run("get_ip_statistics", {"ip": ips[n % len(ips)], "lookback_hours": 24}, spec["config"],
                     state_dir=Path(spec["state_dir"]))[0]
        print(json.dumps({"began": began, "done": time.time(), "status": result.status,
                          "degraded": result.degraded, "warnings": result.warnings,
                          "error": None if result.error is None else result.error.category.value,
                          "message": result.message}), file=out, flush=True)
        time.sleep(float(spec.get("pause_s", 0.0)))
    # Not a result (collect() reads only the lines that start with '{'): what ended this worker, so a test
    # can tell a storm that ran through its window from one that ran out of lookups or time before it.
    print(f"ended: {ended}", file=out, flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
