"""pytest fixtures: register with `pytest_plugins = ["emulator.pytest_plugin"]` (or `-p`).

- `emulator`: a fresh emulator for one test, calendar pinned at PINNED_NOW.
- `emulator_session`: one emulator shared by the session (pinned too); treat it as read-mostly:
  reset what you change (faults, generation, observations, rate limits).
- `make_emulator(**overrides)`: build and start emulators with EmulatorConfig overrides
  (pinned at PINNED_NOW unless `now=` is given); all are stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.service import Emulator

PINNED_NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)


def _config(**overrides: Any) -> EmulatorConfig:
    overrides.setdefault("now", PINNED_NOW)
    return EmulatorConfig(**overrides)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(_config()) as emu:
        yield emu


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    with Emulator(_config()) as emu:
        yield emu


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**overrides: Any) -> Emulator:
        emu = Emulator(_config(**overrides)).start()
        started.append(emu)
        return emu

    yield make
    for emu in reversed(started):
        emu.stop()
