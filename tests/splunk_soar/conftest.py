"""Fixtures for the Splunk SOAR app: a real HTTPS emulator on loopback and the SDK's own runner.

These tests need Python 3.13 and splunk-soar-sdk 7.x (.venv-soar, made by scripts/soar-venv.sh); in
the core's Python 3.11 test run they are not collected (the SDK cannot be installed there).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if sys.version_info < (3, 13) or importlib.util.find_spec("soar_sdk") is None:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    """An emulator on the real clock: tokens it issues are valid for MSAL's (wall-clock) expiry check."""
    from emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig()) as emulator:
        yield emulator


@pytest.fixture
def asset_file(emu: Any, tmp_path: Path) -> Path:
    path = tmp_path / "asset.json"
    path.write_text(json.dumps(emu.connector_config(app="reader", auth="secret")), encoding="utf-8")
    return path


@pytest.fixture
def wrong_secret_asset(emu: Any, tmp_path: Path) -> Path:
    """The reader's asset with a client secret Entra ID refuses."""
    path = tmp_path / "wrong.json"
    config = emu.connector_config(app="reader", auth="secret") | {"client_secret": "not-the-secret"}
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture
def runner(tmp_path: Path) -> Any:
    """Run an action through the SDK's runner; each test has its own local asset state."""
    from soar_helpers import SoarRunner

    return SoarRunner(state_dir=tmp_path / "soar-state", work_dir=tmp_path)
