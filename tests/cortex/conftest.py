"""Fixtures of the Cortex analyzer tests: the built archive, its venv, and jobs against the emulator."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator

from .jobs import ANALYZER, ROOT, Job, analyzer_venv, cortex_input, items_for, run_job, unpack_archive


@pytest.fixture(scope="session")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive scripts/package-cortex.sh builds, unpacked (analyzers/, thehive-templates/)."""
    root = tmp_path_factory.mktemp("cortex-archive")
    unpack_archive(root / "dist", root / "unpacked")
    return root / "unpacked"


@pytest.fixture(scope="session")
def analyzer_dir(unpacked: Path) -> Path:
    return unpacked / "analyzers" / ANALYZER


@pytest.fixture(scope="session")
def program(analyzer_dir: Path) -> Path:
    return analyzer_dir / "mde_ipstatistics.py"


@pytest.fixture(scope="session")
def cortex_python(analyzer_dir: Path) -> Path:
    """.venv-cortex, from the archive's requirements.txt (built once, reused while unchanged)."""
    return analyzer_venv(analyzer_dir)


@pytest.fixture
def job(cortex_python: Path, program: Path, tmp_path: Path) -> Callable[..., Job]:
    """job(emu, data, **options): one Cortex job against ``emu``, trusting its CA through cacerts.

    Options: ``items`` (configuration item overrides), and cortex_input's keyword arguments."""
    counter = itertools.count()
    state_dir = tmp_path / "state"

    def make(emu: Emulator, data: Any, *, items: dict[str, Any] | None = None, **options: Any) -> Job:
        options.setdefault("cacerts", Path(emu.ca_path).read_text())
        document = cortex_input(data, items_for(emu, state_dir, items), **options)
        return run_job(cortex_python, program, tmp_path / f"job-{next(counter)}", document)

    return make


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """MDE_TEST_REDIS_URL (./run.sh test sets it), else a private redis-server from scripts/start-redis.sh."""
    url = os.environ.get("MDE_TEST_REDIS_URL")
    if url:
        yield url
        return
    script = str(ROOT / "scripts" / "start-redis.sh")
    started = subprocess.run([script, "start"], capture_output=True, text=True, timeout=300, check=False)
    assert started.returncode == 0, f"scripts/start-redis.sh could not start redis-server:\n{started.stderr}"
    url = started.stdout.strip().splitlines()[-1]
    yield url
    subprocess.run([script, "stop", url], capture_output=True, timeout=30, check=False)
