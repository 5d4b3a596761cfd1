"""Fixtures of the Cortex analyzer tests: the built archive, its venv, and jobs against the emulator."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator

from .jobs import ANALYZER, Job, analyzer_venv, cortex_input, items_for, run_job, unpack_archive


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
