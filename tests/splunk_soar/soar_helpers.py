"""Running the app through the SDK's own CLI runner and reading what it prints."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "connector" / "platforms" / "splunk_soar"
PLAYBOOKS = REPO / "playbooks" / "splunk_soar"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RESULT = re.compile(
    r"Action params: (?P<params>\{.*?\})\n"
    r"Action success: (?P<success>True|False)\n"
    r"Result data: (?P<data>\[.*?\])\n"
    r"Result summary: (?P<summary>.*?)\n"
    r"Result message: (?P<message>.*?)\n"
    r"Objects successful/total: ",
    re.S,
)


@dataclass
class SoarResult:
    params: dict[str, Any]
    success: bool
    data: list[dict[str, Any]]
    summary: dict[str, Any]
    message: str

    @property
    def status(self) -> str:
        return "success" if self.success else "failed"


@dataclass
class RunOutput:
    returncode: int
    stdout: str
    stderr: str
    results: list[SoarResult]


def parse_results(stdout: str) -> list[SoarResult]:
    text = _ANSI.sub("", stdout)
    return [
        SoarResult(
            params=json.loads(m["params"]),
            success=m["success"] == "True",
            data=json.loads(m["data"]),
            summary=ast.literal_eval(m["summary"]) or {},
            message=m["message"],
        )
        for m in _RESULT.finditer(text)
    ]


class SoarRunner:
    """`python -m src.app action <name> -a asset.json -p params.json`, from the app directory."""

    def __init__(self, state_dir: Path, work_dir: Path) -> None:
        self.state_dir = state_dir
        self.work_dir = work_dir

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))}
        env["MDE_SOAR_STATE_DIR"] = str(self.state_dir)
        return env

    def run(self, action: str, asset: Path, params: dict[str, Any] | None = None) -> RunOutput:
        command = [sys.executable, "-m", "src.app", "action", action, "-a", str(asset)]
        if params is not None:
            params_file = self.work_dir / f"params-{action}.json"
            params_file.write_text(json.dumps(params), encoding="utf-8")
            command += ["-p", str(params_file)]
        done = subprocess.run(command, cwd=APP_DIR, env=self.env(), capture_output=True, text=True, timeout=300)
        return RunOutput(done.returncode, done.stdout, done.stderr, parse_results(done.stdout))

    def state_file(self, asset_id: str = "1") -> Path:
        return self.state_dir / f"{asset_id}_state.json"
