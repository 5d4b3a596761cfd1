"""Fixtures for the integration's tests beside it: an emulator on the real clock and a fresh integration
context per test, and this project's XSOAR harness (tests/xsoar/xsoar_helpers.py) on the path.

The integration runs in a subprocess per command (XSOAR's fresh container) with the vendored
CommonServerPython/demistomock on its path (<repo>/../shared/vendor/xsoar, or MDE_XSOAR_VENDOR).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "xsoar"))


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    """An emulator on the real clock (token expiry is checked against the wall clock)."""
    from emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig()) as emulator:
        yield emulator


@pytest.fixture
def context_file(tmp_path: Path) -> Path:
    """The instance's integration context (empty: a new instance)."""
    return tmp_path / "integration-context.json"


@pytest.fixture
def fresh_emu(emu: Any) -> Any:
    """The module's emulator with no faults, rate-limit history or observations left by earlier tests."""
    emu.clear_faults()
    emu.reset_rate_limits()
    emu.reset_observations()
    return emu
