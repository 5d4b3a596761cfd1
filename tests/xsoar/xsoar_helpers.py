"""Running the XSOAR integration in a subprocess, as XSOAR runs each command in a fresh container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "connector" / "platforms" / "xsoar"
INTEGRATION_DIR = PACK / "Integrations" / "MDEIPStatistics"
RUNNER = Path(__file__).with_name("xsoar_runner.py")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy",
                   "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def vendor_dir() -> Path:
    """The vendored CommonServerPython/demistomock: MDE_XSOAR_VENDOR, else <repo>/../shared/vendor/xsoar."""
    path = Path(os.environ.get("MDE_XSOAR_VENDOR") or REPO.parent / "shared" / "vendor" / "xsoar")
    if not (path / "CommonServerPython.py").is_file():
        raise FileNotFoundError(f"CommonServerPython.py not found in {path}: set MDE_XSOAR_VENDOR")
    return path


def xsoar_params(emu: Any, app: str = "reader", **extra: Any) -> dict[str, Any]:
    """Instance parameters as XSOAR hands them over: secrets in credentials objects, the CA as PEM text."""
    config = emu.connector_config(app=app, auth="secret")
    params: dict[str, Any] = {
        "tenant_id": config["tenant_id"],
        "client_id": config["client_id"],
        "credentials": {"identifier": "", "password": config["client_secret"]},
        "api_url": config["api_url"],
        "login_url": config["login_url"],
        "scope": config["scope"],
        "ca_bundle": Path(config["ca_bundle"]).read_text(encoding="ascii"),
        "proxy": False,
        "integrationReliability": "B - Usually reliable",
    }
    params.update(extra)
    return params


@dataclass
class Run:
    entries: list[dict[str, Any]]
    logs: list[str]
    crashed: str | None
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if isinstance(e, dict) and e.get("Type") == 4]

    @property
    def notes(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if isinstance(e, dict) and e.get("Type") != 4]

    def everything(self) -> str:
        """All a person or a log collector could see of the run."""
        return json.dumps(self.entries) + "\n".join(self.logs) + self.stdout + self.stderr


def run_command(command: str, params: dict[str, Any], args: dict[str, Any] | None, context_file: Path,
                *, env: dict[str, str] | None = None, timeout: float = 90.0, start: bool = False,
                context_latency_s: float = 0.0, calling_context: dict[str, Any] | None = None) -> Any:
    """Run one command in a fresh process; return the Run (or, with start=True, the Popen and its out file).
    ``calling_context`` is demisto.callingContext: who ran the command (a playbook task, a War Room entry)."""
    work = context_file.parent
    out_file = work / f"out-{uuid.uuid4().hex[:12]}.json"
    spec_file = out_file.with_suffix(".spec.json")
    spec_file.write_text(json.dumps({"command": command, "params": params, "args": args or {},
                                     "context_file": str(context_file), "out_file": str(out_file),
                                     "context_latency_s": context_latency_s, "calling_context": calling_context,
                                     "vendor_dir": str(vendor_dir()), "integration_dir": str(INTEGRATION_DIR)}),
                         encoding="utf-8")
    child_env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    # XSOAR runs each command in a fresh container: nothing local (the temporary directory included)
    # outlives it, so each command here gets a temporary directory of its own.
    fresh_tmp = work / f"container-{uuid.uuid4().hex[:12]}"
    fresh_tmp.mkdir()
    child_env["TMPDIR"] = str(fresh_tmp)
    child_env.update(env or {})
    process = subprocess.Popen([sys.executable, str(RUNNER), str(spec_file)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env, cwd=work)
    if start:
        return process, out_file
    return finish(process, out_file, timeout)


def finish(process: subprocess.Popen[str], out_file: Path, timeout: float = 90.0) -> Run:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr
    outcome = json.loads(out_file.read_text(encoding="utf-8"))
    return Run(outcome["entries"], outcome["logs"], outcome["crashed"], stdout, stderr)


def read_context(context_file: Path) -> dict[str, Any]:
    return json.loads(context_file.read_text(encoding="utf-8"))["context"]
