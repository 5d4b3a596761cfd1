"""The Splunk SOAR import benchmark runs and reports what it claims: the connector's share of an action
process's start, measured after the SDK's, for every run.

Speed is the benchmark's business (bench/README.md has its figures); this only keeps it working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_soar_import_benchmark_reports_the_connector_within_the_app_import() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "soar_import.py"), "--runs", "5", "--json"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout)
    parts = figures["import_ms"]
    assert set(parts) == {"connector", "src.declarations", "soar_sdk.app", "src.app"}
    assert all(0 < part["best"] <= part["median"] for part in parts.values())
    assert parts["connector"]["best"] < parts["src.app"]["best"]  # a part of the app's import, not all of it
    assert figures["wall_ms"]["best"] > parts["src.app"]["best"]  # the interpreter's own start comes on top
    assert figures["target_connector_ms"] == 40
