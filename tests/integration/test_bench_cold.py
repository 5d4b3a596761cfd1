"""The cold-start benchmark runs and reports what it claims: every variant measured against both floors,
the token taken from the shared cache (no token request while measuring), and the imports that cost the
CLI most.

Speed is the benchmark's business (bench/README.md has its figures); this only keeps it working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cold_start_benchmark_measures_every_variant_against_both_floors() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "cold_start.py"), "--pairs", "15", "--top", "5",
                          "--json", "--python", sys.executable], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout)
    assert set(figures["median_ms"]) == {"floor", "stack_floor", "cli", "run", "cache_hit", "import"}
    assert all(ms > 0 for ms in figures["median_ms"].values())
    assert set(figures["ratio_to_floor"]) == set(figures["ratio_to_stack_floor"]) == {"cli", "run", "cache_hit",
                                                                                        "import"}
    assert figures["token_requests_during_measurement"] == 0
    names = [name for name, _ in figures["top_imports_of_cli_ms"]]
    assert len(names) == 5 and "connector.cli" in names
    assert not any(name.startswith(("msal", "jsonschema")) for name in names)
    beyond = [name for name, _ in figures["top_imports_beyond_floor_self_ms"]]
    assert len(beyond) == 5
    assert "requests" not in beyond and "urllib3" not in beyond  # the floor imports them too
    assert figures["imports_beyond_floor_ms"] >= sum(ms for _, ms in figures["top_imports_beyond_floor_self_ms"])
    beyond_stack = [name for name, _ in figures["top_imports_beyond_stack_floor_self_ms"]]
    assert len(beyond_stack) == 5
    stack = {"pydantic", "pydantic.main", "pydantic_core", "pydantic_core._pydantic_core", "requests", "urllib3"}
    assert not stack & set(beyond_stack)  # the declared-stack floor imports them too
    assert figures["imports_beyond_stack_floor_ms"] < figures["imports_beyond_floor_ms"]
