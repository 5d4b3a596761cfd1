"""The connector's own import inside a Splunk SOAR action process, after the SDK's.

Every Splunk SOAR action run is a fresh process that imports the app module (``src.app``): the SDK first
(which imports pydantic for its own models), then the core. What the core adds to each action run is the
cumulative ``-X importtime`` of ``connector`` in that process: its modules, cryptography, and defining its
models (pydantic itself is already there, the SDK's). Target (issue 19): <= 40 ms.

This runs ``python -X importtime -c "import src.app"`` in the app's folder, with the interpreter given
(``.venv-soar``: Python 3.13, splunk-soar-sdk 7.x, the core installed from this checkout), N times, and
prints the best and the median of each part; then the wall time of the same import, also best and median.
Runs are sequential, so a busy machine shows as a wide gap between best and median.

    ./run.sh bench soar                     # or: .venv-soar/bin/python bench/soar_import.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "connector" / "platforms" / "splunk_soar"
PARTS = ("connector", "src.declarations", "soar_sdk.app", "src.app")
"""The imports reported: the core, the SDK declarations built from manifest.json, the SDK's App module,
and the app module as a whole."""
TARGET_MS = 40.0


def cumulative_ms(stderr: str) -> dict[str, float]:
    """The cumulative import time (ms) of each part, from ``-X importtime``'s report (the first import of
    a module is the one reported; a part imported inside another part is still reported on its own)."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if name in PARTS and name not in found:
            found[name] = int(cumulative) / 1000
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per measurement (at least 5)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the SOAR venv")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    command = [args.python, "-c", "import src.app"]
    subprocess.run(command, cwd=APP_DIR, check=True, capture_output=True, timeout=120)  # warm: .pyc, page cache
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    walls: list[float] = []
    for _ in range(args.runs):
        done = subprocess.run([args.python, "-X", "importtime", *command[1:]], cwd=APP_DIR, check=True,
                              capture_output=True, text=True, timeout=120)
        for name, ms in cumulative_ms(done.stderr).items():
            parts[name].append(ms)
        started = time.perf_counter()
        subprocess.run(command, cwd=APP_DIR, check=True, capture_output=True, timeout=120)
        walls.append((time.perf_counter() - started) * 1000)
    missing = [name for name, values in parts.items() if len(values) != args.runs]
    if missing:
        raise SystemExit(f"-X importtime did not report {missing}: is {args.python} the SOAR venv's python?")
    figures = {
        "runs": args.runs,
        "python": args.python,
        "import_ms": {name: {"best": round(min(values), 1), "median": round(statistics.median(values), 1)}
                      for name, values in parts.items()},
        "wall_ms": {"best": round(min(walls), 1), "median": round(statistics.median(walls), 1)},
        "target_connector_ms": TARGET_MS,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"Splunk SOAR action process: `import src.app`, {args.runs} runs ({args.python})\n")
    print(f"{'part (-X importtime, cumulative)':<34} {'best ms':>8} {'median ms':>10}")
    for name, values in figures["import_ms"].items():
        target = f"   target <= {TARGET_MS:.0f}" if name == "connector" else ""
        print(f"{name:<34} {values['best']:8.1f} {values['median']:10.1f}{target}")
    wall = figures["wall_ms"]
    print(f"{'wall time of the whole import':<34} {wall['best']:8.1f} {wall['median']:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
