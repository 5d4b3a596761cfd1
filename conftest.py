"""Fixtures every suite under this directory shares (tests/, and the XSOAR integration's own tests beside it):
the emulator's pytest plugin (a real HTTPS Entra ID + Defender API on loopback),
and a Redis server for the tests of shared state across processes and hosts."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """MDE_TEST_REDIS_URL when set (./run.sh test sets it); otherwise a private redis-server started (and
    stopped) here with scripts/start-redis.sh."""
    url = os.environ.get("MDE_TEST_REDIS_URL")
    if url:
        yield url
        return
    script = str(Path(__file__).resolve().parent / "scripts" / "start-redis.sh")
    if shutil.which("redis-server") is None and shutil.which("apt-get") is None:
        pytest.fail("These tests need Redis: set MDE_TEST_REDIS_URL=redis://127.0.0.1:PORT/0, or install "
                    "redis-server (scripts/start-redis.sh installs and starts one; ./run.sh test does it all)")
    started = subprocess.run([script, "start"], capture_output=True, text=True, timeout=300, check=False)
    if started.returncode != 0:
        pytest.fail(f"scripts/start-redis.sh could not start redis-server:\n{started.stderr}")
    url = started.stdout.strip().splitlines()[-1]
    yield url
    subprocess.run([script, "stop", url], capture_output=True, timeout=30, check=False)
