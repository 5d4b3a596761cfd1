"""The Sentinel Function's tests: the emulator serving the host's identity endpoint, the app settings in
the environment, and the instance's temporary directory (where the Function keeps its state) per test."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import Emulator

from .helpers import app_settings


@pytest.fixture(autouse=True)
def instance_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The Function instance's /tmp: a fresh one per test (its SQLite state, caches and rate log)."""
    folder = tmp_path / "instance-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


@pytest.fixture
def function_app(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A Function App with its system-assigned identity (granted Ip.Read.All) against the emulator."""
    app_settings(monkeypatch, emulator)
    return emulator
