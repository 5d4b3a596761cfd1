"""`mde-ipstats login`, `logout` and a signed-in `test-connectivity`, each run as its own process
the way an analyst runs them, against the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
DOC_IP = "10.209.67.177"


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=False)


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(device_code_interval_s=1, device_auto_approve="analyst", device_auto_approve_polls=2)


@pytest.fixture
def config_file(emu: Emulator, tmp_path: Path) -> Path:
    path = tmp_path / "delegated.json"
    path.write_text(json.dumps({**emu.delegated_config(), "cache_ttl_s": 0}))
    return path


def login(config_file: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return cli("login", "--config", str(config_file), "--state-dir", str(state))


def test_login_prints_the_code_to_stderr_polls_and_names_the_user(emu: Emulator, config_file: Path,
                                                                  tmp_path: Path) -> None:
    done = login(config_file, tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert "To sign in, use a web browser to open the page" in done.stderr
    assert f"{emu.base_url}/devicelogin" in done.stderr
    assert done.stdout.strip().startswith(f"Signed in as {emu.users['analyst'].upn}")
    polls = [e for e in emu.request_log() if e["route"] == "token"]
    assert [e["status"] for e in polls] == [400, 200]  # pending once, then approved


def test_a_second_process_looks_up_with_the_stored_token_and_no_token_request(emu: Emulator, config_file: Path,
                                                                              tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert login(config_file, state).returncode == 0
    before = emu.counters()
    done = cli("get-ip-statistics", DOC_IP, "--config", str(config_file), "--state-dir", str(state), "--format",
               "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["data"][0]["seenInOrg"] is True
    after = emu.counters()
    assert after["token_requests"] == before["token_requests"]
    assert after["api_calls"] == before["api_calls"] + 1


def test_test_connectivity_shows_the_signed_in_user_and_scp(emu: Emulator, config_file: Path,
                                                            tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert login(config_file, state).returncode == 0
    done = cli("test-connectivity", "--config", str(config_file), "--state-dir", str(state))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"signed in as {emu.users['analyst'].upn}" in done.stdout
    assert "scp: Ip.Read.All" in done.stdout


def test_logout_forgets_the_user_and_lookups_then_say_to_log_in(emu: Emulator, config_file: Path,
                                                                tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert login(config_file, state).returncode == 0
    out = cli("logout", "--config", str(config_file), "--state-dir", str(state))
    assert out.returncode == 0 and f"Signed out {emu.users['analyst'].upn}" in out.stdout
    calls = emu.counters()["api_calls"]
    done = cli("get-ip-statistics", DOC_IP, "--config", str(config_file), "--state-dir", str(state))
    assert done.returncode == 1
    assert "authentication" in done.stdout and "mde-ipstats login" in done.stdout
    assert emu.counters()["api_calls"] == calls


def test_a_declined_login_exits_1_with_the_reason(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = make_emulator(device_code_interval_s=1)
    config = tmp_path / "c.json"
    config.write_text(json.dumps(emu.delegated_config()))
    process = subprocess.Popen([sys.executable, "-m", "connector.cli", "login", "--config", str(config),
                                "--state-dir", str(tmp_path / "s")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        emu.decline_device_code(emu.wait_for_device_code(timeout_s=30))
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    assert "declined" in stdout


def test_login_with_public_client_flows_off_names_the_switch(make_emulator: Callable[..., Emulator],
                                                             tmp_path: Path) -> None:
    emu = make_emulator(device_code_interval_s=1)
    emu.set_public_client_flows("delegated", False)
    config = tmp_path / "c.json"
    config.write_text(json.dumps(emu.delegated_config()))
    done = cli("login", "--config", str(config), "--state-dir", str(tmp_path / "s"))
    assert done.returncode == 1
    assert "Allow public client flows" in done.stdout


def test_the_demo_signs_an_emulated_analyst_in_and_looks_up_as_them() -> None:
    done = cli("demo", timeout=120)
    assert done.returncode == 0, done.stderr
    _, delegated = done.stdout.split("== delegated access", 1)
    assert "approves the code by itself" in delegated
    assert "-> pending" in delegated and "-> signed_in: Signed in as analyst@" in delegated
    assert "Defender saw the lookup made by: analyst@" in delegated
    assert "10.209.67.177  common" in delegated
