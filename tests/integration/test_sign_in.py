"""Sign-in with MSAL against the emulated Entra ID: secrets, certificates, errors, the shared token cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector import run
from connector.errors import Category
from emulator.testing import JWT_SHAPE

from .helpers import lookup, only

DOC_IP = "10.209.67.177"


@pytest.mark.parametrize("auth", ["secret", "certificate", "certificate_chain"])
def test_each_credential_form_signs_in_and_the_api_accepts_the_token(emulator, tmp_path: Path, auth: str) -> None:
    result = only(lookup(emulator.connector_config(app="reader", auth=auth), tmp_path, DOC_IP))
    assert result.status == "success", result.message
    assert emulator.counters()["token_requests"] == 1


def test_a_wrong_secret_is_authentication_and_says_what_to_fix(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret") | {"client_secret": "Wrong-Secret-0123456789"}
    result = only(lookup(config, tmp_path, DOC_IP))
    assert result.error.category is Category.AUTHENTICATION
    assert "AADSTS7000215" in result.message and "client_secret" in result.message
    assert "Wrong-Secret-0123456789" not in json.dumps(result.to_dict())
    assert emulator.counters()["api_calls"] == 0


def test_an_unknown_client_is_a_configuration_error(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret") | {
        "client_id": "00000000-0000-0000-0000-00000000beef"}
    result = only(lookup(config, tmp_path, DOC_IP))
    assert result.error.category is Category.CONFIGURATION and "client_id" in result.message


def test_an_unknown_tenant_is_a_configuration_error(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret") | {
        "tenant_id": "00000000-0000-0000-0000-00000000dead"}
    result = only(lookup(config, tmp_path, DOC_IP))
    assert result.error.category is Category.CONFIGURATION and "tenant_id" in result.message


def test_a_batch_signs_in_once(emulator, tmp_path: Path) -> None:
    ips = emulator.org.sample_ips(5, seen=True) + emulator.org.sample_ips(3, seen=False)
    results = lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, ips)
    assert [r.status for r in results] == ["success"] * 8
    assert emulator.counters()["token_requests"] == 1


def _cli(config_path: Path, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector.cli", *args, "--config", str(config_path), "--state-dir", str(state_dir),
         "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False)


def test_a_second_process_reuses_the_token_without_a_token_request(emulator, tmp_path: Path) -> None:
    config_path = tmp_path / "connector.json"
    config = emulator.connector_config(app="reader", auth="certificate") | {"cache_ttl_s": 0}
    config_path.write_text(json.dumps(config))
    state = tmp_path / "state"
    first = _cli(config_path, state, "get-ip-statistics", DOC_IP)
    second = _cli(config_path, state, "get-ip-statistics", DOC_IP, "--lookback-hours", "24")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert emulator.counters()["token_requests"] == 1
    assert emulator.counters()["api_calls"] == 2
    assert state.stat().st_mode & 0o077 == 0, "the state directory is open to others"
    files = [path for path in state.rglob("*") if path.is_file()]
    assert any(path.stat().st_size for path in files)
    for path in files:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        content = path.read_bytes()
        assert config["private_key"].encode() not in content
        assert not JWT_SHAPE.search(content.decode("latin-1")), f"{path} holds a token in clear"


def test_connectivity_passes_and_reports_each_check(emulator, tmp_path: Path) -> None:
    [result] = run("test_connectivity", {}, emulator.connector_config(app="reader", auth="secret"), state_dir=tmp_path)
    assert result.status == "success", result.message
    assert result.summary == {"sign_in": True, "permission": True, "api": True}
    assert "Ip.Read.All" in result.data[0]["token_roles"]


def test_connectivity_says_the_permission_is_missing(emulator, tmp_path: Path) -> None:
    [result] = run("test_connectivity", {}, emulator.connector_config(app="noperm", auth="secret"), state_dir=tmp_path)
    assert result.status == "failed" and result.error.category is Category.PERMISSION
    assert result.summary == {"sign_in": True, "permission": False, "api": False}
    assert "Ip.Read.All" in result.message and "admin consent" in result.message
    assert emulator.counters()["api_calls"] == 0


def test_connectivity_says_sign_in_failed(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret") | {"client_secret": "nope-nope-nope"}
    [result] = run("test_connectivity", {}, config, state_dir=tmp_path)
    assert result.message.startswith("Sign-in failed")
    assert result.summary == {"sign_in": False, "permission": False, "api": False}


def test_connectivity_says_the_api_failed(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret") | {"api_url": emulator.unresponsive_url,
                                                                        "timeout_s": 1, "item_budget_s": 3}
    [result] = run("test_connectivity", {}, config, state_dir=tmp_path)
    assert result.summary == {"sign_in": True, "permission": True, "api": False}
    assert result.error.category is Category.NETWORK


def test_a_process_that_holds_a_token_needs_no_sign_in_for_the_next_run(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="certificate")
    for run_number in range(3):
        assert only(lookup(config, tmp_path / f"run{run_number}", DOC_IP, 24 + run_number)).status == "success"
    assert emulator.counters()["token_requests"] == 1
    assert emulator.counters()["api_calls"] == 3


def test_a_new_process_takes_the_shared_token_without_even_asking_for_discovery(emulator, tmp_path: Path) -> None:
    from connector.auth import forget_process_tokens

    config = emulator.connector_config(app="reader", auth="secret") | {"cache_ttl_s": 0}
    assert only(lookup(config, tmp_path, DOC_IP)).status == "success"
    forget_process_tokens()  # what the next SOAR action run, a new process, starts with
    emulator.reset_observations()
    assert only(lookup(config, tmp_path, DOC_IP)).status == "success"
    assert [entry["route"] for entry in emulator.request_log()] == ["api"]


def test_an_unusable_state_directory_is_a_result_per_item_not_a_crash(emulator, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    results = lookup(emulator.connector_config(app="reader", auth="secret"), blocker / "state",
                     [DOC_IP, "bad-ip", "10.0.0.1"])
    assert [r.status for r in results] == ["failed"] * 3
    assert results[0].error.category is Category.CONFIGURATION and "state" in results[0].message.lower()
    assert results[1].error.category is Category.INVALID_INPUT
    assert emulator.counters()["api_calls"] == 0
