"""The integration README's examples, produced by running every line of command_examples.txt against the
emulator, as `demisto-sdk generate-docs -e command_examples.txt` records them against a live server.

    .venv/bin/python connector/platforms/xsoar/packtools/command_examples.py --write   # record, then commit
    .venv/bin/python connector/platforms/xsoar/packtools/command_examples.py --check   # re-record and compare

Each command runs as XSOAR runs it (main() in a fresh process, XSOAR's CommonServerPython and demistomock,
the integration context carried between commands), through the test harness tests/xsoar/xsoar_helpers.py,
against an emulator on a fixed calendar date: application commands as the app registration, the sign-in
commands as a delegated instance whose device code the emulator approves as the analyst. The record is
test_data/command_examples.json; integration_readme.py renders it. --check compares a fresh record with
the committed one after masking what differs from run to run (the emulator's port, device codes, times
and ages, correlation ids), so the README's examples are real answers and stay so.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INTEGRATION_DIR = HERE.parent / "Integrations" / "MDEIPStatistics"
EXAMPLES_TXT = INTEGRATION_DIR / "command_examples.txt"
RECORD = INTEGRATION_DIR / "test_data" / "command_examples.json"
REPO = HERE.parents[3]
EMULATOR_NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SIGN_IN = ("mde-auth-start", "mde-auth-complete", "mde-auth-test", "mde-auth-reset")

_MASKS = (
    (re.compile(r"https://127\.0\.0\.1:\d+"), "https://<emulator>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<id>"),
    (re.compile(r"\b\d+(\.\d+)? (second|minute|hour|day)s?( ago)?"), "<age>"),
)
_VOLATILE_KEYS = {"UserCode", "CacheAgeSeconds", "ExpiresAt", "Message"}


def parse_line(line: str) -> tuple[str, dict[str, str]]:
    """'!cmd a=1 b="x,y"' -> ('cmd', {'a': '1', 'b': 'x,y'}), as XSOAR's command line splits it."""
    words = shlex.split(line.strip().removeprefix("!"))
    return words[0], dict(word.split("=", 1) for word in words[1:])


def record() -> list[dict[str, Any]]:
    """Run every example line and keep what the War Room would show: the context and the readable output."""
    sys.path.insert(0, str(REPO / "tests" / "xsoar"))
    from xsoar_helpers import run_command, xsoar_params  # type: ignore[import-not-found]

    from emulator import Emulator, EmulatorConfig

    lines = [line for line in EXAMPLES_TXT.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = []
    config = EmulatorConfig(now=EMULATOR_NOW, device_auto_approve="analyst")
    with Emulator(config) as emu, tempfile.TemporaryDirectory() as work:
        app_context = Path(work) / "app" / "context.json"
        user_context = Path(work) / "user" / "context.json"
        app_context.parent.mkdir()
        user_context.parent.mkdir()
        for line in lines:
            command, args = parse_line(line)
            if command in SIGN_IN:
                delegated = emu.delegated_config()
                params = {"tenant_id": delegated["tenant_id"], "client_id": delegated["client_id"],
                          "auth_mode": "delegated", "api_url": delegated["api_url"],
                          "login_url": delegated["login_url"], "scope": delegated["scope"],
                          "ca_bundle": Path(delegated["ca_bundle"]).read_text(encoding="ascii"), "proxy": False}
                context = user_context
            else:
                params, context = xsoar_params(emu), app_context
            run = run_command(command, params, args, context)
            if run.crashed:
                raise RuntimeError(f"{line}: the integration crashed:\n{run.crashed}")
            entries = [e for e in run.entries if isinstance(e, dict)]
            outputs: dict[str, Any] = {}
            for entry in entries:
                outputs.update(entry.get("EntryContext") or {})
            examples.append({"command": line.strip(), "context": outputs,
                             "readable": [str(e.get("HumanReadable") or e.get("Contents")) for e in entries]})
    return examples


def masked(value: Any, key: str = "") -> Any:
    """``value`` with what differs between two honest runs replaced by placeholders."""
    if key in _VOLATILE_KEYS and value is not None:
        return f"<{key}>"
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        value = re.sub(r"\*\*[A-Z0-9]{6,12}\*\*", "**<code>**", value)
        for pattern, placeholder in _MASKS:
            value = pattern.sub(placeholder, value)
    return value


def load() -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = json.loads(RECORD.read_text(encoding="utf-8"))
    return recorded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="record or check the integration README's command examples")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true")
    group.add_argument("--check", action="store_true")
    options = parser.parse_args(argv)
    fresh = record()
    if options.write:
        RECORD.parent.mkdir(exist_ok=True)
        RECORD.write_text(json.dumps(fresh, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {RECORD} ({len(fresh)} examples): now run integration_readme.py --write")
        return 0
    if masked(fresh) != masked(load()):
        print(f"{RECORD} is not what the commands answer now: run {Path(__file__).name} --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
