"""The core's auth_mode managed_identity through connector.run, as any adapter calls it (the CLI, XSOAR on an
Azure VM...): test_connectivity names the identity, and the local identity endpoint is never proxied."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import run
from emulator import Emulator

from .helpers import clear_app_settings


@pytest.fixture
def host(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    clear_app_settings(monkeypatch)
    for name, value in emulator.identity_environment().items():
        monkeypatch.setenv(name, value)
    return emulator


def test_connectivity_names_the_identity_from_its_token(host: Emulator, tmp_path: Path) -> None:
    [result] = run("test_connectivity", {}, host.managed_identity_config("user"), state_dir=tmp_path)
    user = host.identities["user"]
    assert result.status == "success"
    assert f"managed identity {user.client_id} (object id {user.object_id})" in result.message
    assert result.data[0]["token_roles"] == ["Ip.Read.All"] and result.data[0]["api"] is True


def test_connectivity_without_the_role_stops_at_the_permission_with_the_grant(host: Emulator, tmp_path: Path) -> None:
    [result] = run("test_connectivity", {}, host.managed_identity_config("noperm-identity"), state_dir=tmp_path)
    noperm = host.identities["noperm-identity"]
    assert result.status == "failed" and result.error is not None and result.error.category.value == "permission"
    assert result.summary == {"sign_in": True, "permission": False, "api": False}
    assert f"servicePrincipals/{noperm.object_id}/appRoleAssignments" in result.message
    assert not [e for e in host.request_log() if e["route"] == "api"]


def test_a_configured_proxy_carries_api_calls_but_not_the_hosts_identity_endpoint(host: Emulator,
                                                                                  tmp_path: Path) -> None:
    config = {**host.managed_identity_config(), "proxy": "http://127.0.0.1:9", "timeout_s": 2, "item_budget_s": 3}
    [result] = run("test_connectivity", {}, config, state_dir=tmp_path)
    assert result.summary["sign_in"] is True  # the token came straight from the local endpoint
    assert result.error is not None and result.error.category.value == "network"
    assert "proxy" in result.message
    assert host.counters()["identity_token_requests"] == 1
