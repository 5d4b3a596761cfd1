"""Shared fixtures: the emulator's pytest plugin (a real HTTPS Entra ID + Defender API on loopback)."""

from collections.abc import Iterator

import pytest

from connector.auth import forget_process_tokens

pytest_plugins = ["emulator.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_process_tokens() -> Iterator[None]:
    """Each test starts as a new process would: without tokens held from an earlier test's emulator
    (emulators share tenant and client ids, and a later one may get an earlier one's port)."""
    forget_process_tokens()
    yield
    forget_process_tokens()
