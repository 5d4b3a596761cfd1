"""Running the shipped analyzer the way Cortex does: from the archive, in a venv of its own requirements.

- `unpack_archive`: scripts/package-cortex.sh into a temporary dist, unpacked.
- `analyzer_venv`: `.venv-cortex`, made with the archive's requirements.txt only (so a dependency the
  archive forgets fails here), reused while the requirements and the shipped core wheel are unchanged.
- `run_job`: a job directory with input/input.json in the shape Cortex writes, the program run as a
  subprocess with that venv's python, output/output.json read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
ANALYZER = "MDE_IPStatistics"
VENV = ROOT / ".venv-cortex"
STAMP = ".mde-cortex-stamp"
JOB_TIMEOUT_S = 90.0


def unpack_archive(dist: Path, into: Path) -> Path:
    """Build the archive into ``dist`` and unpack it into ``into``; the archive's path is returned."""
    built = subprocess.run([str(ROOT / "scripts" / "package-cortex.sh"), str(dist)], capture_output=True,
                           text=True, timeout=300, check=False)
    assert built.returncode == 0, f"scripts/package-cortex.sh failed:\n{built.stderr}"
    archive = Path(built.stdout.strip().splitlines()[-1])
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return archive


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", "-q", *args],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stderr[-4000:]}"


def analyzer_venv(analyzer_dir: Path, venv: Path = VENV) -> Path:
    """The python of a venv with exactly what the archive's requirements.txt installs (one builder at a
    time: two test runs on one checkout share the venv)."""
    lock = Path(tempfile.gettempdir()) / f"mde-cortex-venv-{hashlib.sha256(str(venv).encode()).hexdigest()[:12]}.lock"
    with FileLock(str(lock), timeout=900):
        return _analyzer_venv(analyzer_dir, venv)


def _analyzer_venv(analyzer_dir: Path, venv: Path) -> Path:
    requirements = analyzer_dir / "requirements.txt"
    wheels = sorted((analyzer_dir / "wheels").glob("*.whl"))
    digest = hashlib.sha256(requirements.read_bytes())
    for wheel in wheels:
        digest.update(wheel.read_bytes())
    digest.update(sys.version.encode())
    stamp = digest.hexdigest()
    python = venv / "bin" / "python"
    stamp_file = venv / STAMP
    if python.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return python
    # Made afresh whenever the archive changed: a new build of the same version may bring a new
    # dependency, which pip would not install over the old build it calls satisfied.
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    _pip(python, "install", "-r", str(requirements))
    stamp_file.write_text(stamp + "\n")
    return python


def items_for(emu: Emulator, state_dir: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The organization's values of the configuration items: the emulator's app, cache on, state kept."""
    config: dict[str, Any] = dict(emu.connector_config(app="reader", auth="secret"))
    config.pop("ca_bundle")  # Cortex's cacerts carries it (see cortex_input)
    config["state_dir"] = str(state_dir)
    config.update(overrides or {})
    return config


def cortex_input(data: Any, config: dict[str, Any], *, data_type: str = "ip", tlp: int = 2, pap: int = 2,
                 proxy: dict[str, str] | None = None, cacerts: str = "", parameters: dict[str, Any] | None = None,
                 ) -> dict[str, Any]:
    """input.json as Cortex writes it: the observable, TLP/PAP, and the merged configuration (Cortex's
    own settings, the flavor's `config`, the organization's values of the configuration items)."""
    proxy = proxy or {"http": "", "https": ""}
    return {
        "data": data,
        "dataType": data_type,
        "tlp": tlp,
        "pap": pap,
        "message": "",
        "parameters": parameters or {},
        "config": {
            "jobTimeout": 30,
            "service": "get_ip_statistics",
            "check_tlp": True,
            "max_tlp": 2,
            "check_pap": True,
            "max_pap": 3,
            "auto_extract": False,
            "proxy": proxy,
            "proxy_http": proxy.get("http", ""),
            "proxy_https": proxy.get("https", ""),
            "cacerts": cacerts,
            "jobCache": 10,
            **config,
        },
    }


@dataclass
class Job:
    returncode: int
    output: dict[str, Any]
    text: str
    stderr: str
    seconds: float


def run_job(python: Path, program: Path, job_dir: Path, document: dict[str, Any]) -> Job:
    """One Cortex job: input/input.json in, the program run as Cortex runs it, output/output.json out."""
    (job_dir / "input").mkdir(parents=True)
    (job_dir / "input" / "input.json").write_text(json.dumps(document))
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    started = time.monotonic()
    done = subprocess.run([str(python), str(program), str(job_dir)], capture_output=True, text=True,
                          timeout=JOB_TIMEOUT_S, check=False, env=env, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    out = job_dir / "output" / "output.json"
    assert out.is_file(), f"no output.json (exit {done.returncode}):\n{done.stderr[-3000:]}"
    text = out.read_text()
    return Job(done.returncode, json.loads(text), text, done.stderr, seconds)


def run_jobs(python: Path, program: Path, jobs: list[tuple[Path, dict[str, Any]]], parallel: int) -> list[Job]:
    """Jobs run ``parallel`` at a time (Cortex runs jobs of one analyzer concurrently), in order."""
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(lambda job: run_job(python, program, *job), jobs))
