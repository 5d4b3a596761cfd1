"""Fixtures for the storm tests: a private redis-server, and real worker processes sharing state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).with_name("workers.py")


@pytest.fixture
def namespace() -> str:
    """A Redis key namespace of this test's own, so tests sharing one server never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "redis"])
def shared(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> dict[str, Any]:
    """Where worker processes meet: a state directory (SQLite) or a Redis server and namespace."""
    if request.param == "redis":
        return {"backend": "redis", "where": request.getfixturevalue("redis_url"), "namespace": namespace}
    return {"backend": "sqlite", "where": str(tmp_path / "state"), "namespace": namespace}


def run_workers(command: str, specs: list[dict[str, Any]], timeout_s: float = 120.0) -> list[Any]:
    """Start one process per spec at once, wait for all, return each one's JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(WORKERS), command, json.dumps(spec)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for spec in specs]
    answers = []
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, f"worker {command} failed:\n{err}"
        answers.append(json.loads(out.strip().splitlines()[-1]))
    return answers


def start_worker(command: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKERS), command, json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def workers() -> Any:
    """run_workers(command, specs) and start_worker(command, spec), as a fixture (no test imports conftest)."""

    class Workers:
        run = staticmethod(run_workers)
        start = staticmethod(start_worker)

    return Workers
