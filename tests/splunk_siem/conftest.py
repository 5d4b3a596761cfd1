"""Fixtures for the Splunk add-on TA-mde-ipstats: the packaged add-on, a fake splunkd, the emulator.

These tests need Python 3.13 with splunk-sdk 3.x, UCC and AppInspect (.venv-siem, made by
scripts/siem-venv.sh); in the core's Python 3.11 test run they are not collected.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if sys.version_info < (3, 13) or importlib.util.find_spec("splunklib") is None:
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ENV = "MDE_SIEM_PACKAGE"
"""A built TA-mde-ipstats-<version>.tgz to test (scripts/test-splunk-siem.sh builds it once); when
unset, the session builds one with scripts/package-splunk-siem.sh."""


@pytest.fixture(scope="session")
def addon_tgz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get(PACKAGE_ENV)
    if given:
        return Path(given)
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([str(ROOT / "scripts" / "package-splunk-siem.sh"), str(dist)], capture_output=True,
                           text=True, timeout=900, check=False)
    assert built.returncode == 0, f"package-splunk-siem.sh failed:\n{built.stderr[-4000:]}"
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def addon_dir(addon_tgz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The add-on as Splunk installs it: the tarball extracted under etc/apps."""
    apps = tmp_path_factory.mktemp("apps")
    with tarfile.open(addon_tgz) as tar:
        tar.extractall(apps, filter="data")
    return apps / "TA-mde-ipstats"


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    """An emulator on the real clock (MSAL checks token expiry against it) with room for bursts:
    the connector's own gate keeps to 100 calls a minute, compressed by the Advanced tab's
    rate_limit_time_scale in the tests that need a burst to fit."""
    from emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(rate_limits=((100_000, 60.0), (1_000_000, 3600.0)))) as emulator:
        yield emulator


@pytest.fixture
def session_key() -> str:
    return "fake-session-" + secrets.token_hex(16)


def account_values(emu: Any, auth: str = "secret") -> dict[str, Any]:
    """What an administrator enters in Configuration > Accounts (the emulator's reader app)."""
    config = dict(emu.connector_config(app="reader", auth=auth))
    config.pop("ca_bundle", None)  # a shared setting: the Advanced tab
    return config


def advanced_values(emu: Any, **overrides: Any) -> dict[str, Any]:
    """Configuration > Advanced: trust the emulator's CA, and time compression for bursts (the testing-only
    rate_limit_time_scale has no place on the tab: the tests write it into the stanza themselves, which the
    search reads whole)."""
    return {"ca_bundle": emu.ca_path, "cache_ttl_s": "3600", "rate_limit_time_scale": "60", **overrides}


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """MDE_TEST_REDIS_URL when set (./run.sh test starts one); else a private redis-server for the
    session, started and stopped by scripts/start-redis.sh as the storm tests do."""
    url = os.environ.get("MDE_TEST_REDIS_URL")
    if url:
        yield url
        return
    started = subprocess.run([str(ROOT / "scripts" / "start-redis.sh"), "start"], capture_output=True, text=True,
                             timeout=180, check=False)
    assert started.returncode == 0, f"scripts/start-redis.sh could not start redis-server:\n{started.stderr}"
    url = started.stdout.strip()
    yield url
    subprocess.run([str(ROOT / "scripts" / "start-redis.sh"), "stop", url], capture_output=True, timeout=30,
                   check=False)
