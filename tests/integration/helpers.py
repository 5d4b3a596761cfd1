"""Small helpers shared by the emulator-backed tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector import ActionResult, run


def lookup(config: dict[str, Any], state_dir: Path, ip: Any, hours: Any = 720, **overrides: Any) -> list[ActionResult]:
    return run("get_ip_statistics", {"ip": ip, "lookback_hours": hours}, {**config, **overrides},
               state_dir=state_dir)


def only(results: list[ActionResult]) -> ActionResult:
    assert len(results) == 1, results
    return results[0]


def api_requests(emu: Any) -> list[dict[str, Any]]:
    return [entry for entry in emu.request_log() if entry["route"] == "api"]
