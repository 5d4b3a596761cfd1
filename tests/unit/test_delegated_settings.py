"""Delegated access without a network: configuration, the delegated scope, the installation key,
the sign-in actions' input and their declaration in manifest.json."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from connector.delegated import KEY_FILE, delegated_scope, installation_key
from connector.errors import ConfigurationError, InvalidInputError
from connector.manifest import build_manifest
from connector.settings import Settings
from connector.signin import parse_wait

TENANT = "e05274b7-42da-4fbf-873d-20a4bd0e681e"
CLIENT = "4fa825c7-b835-41ec-97f7-3c24646e64ce"
DELEGATED = {"tenant_id": TENANT, "client_id": CLIENT, "auth_mode": "delegated"}


def test_delegated_needs_only_tenant_and_client() -> None:
    settings = Settings.load(DELEGATED)
    assert settings.auth_mode == "delegated"
    assert settings.client_secret is None and settings.private_key is None


def test_application_mode_is_the_default_and_still_needs_a_credential() -> None:
    assert Settings.load({**DELEGATED, "auth_mode": None, "client_secret": "x" * 40}).auth_mode == "application"
    with pytest.raises(ConfigurationError, match="client_secret or private_key"):
        Settings.load({"tenant_id": TENANT, "client_id": CLIENT})


@pytest.mark.parametrize("field", ["client_secret", "thumbprint"])
def test_a_credential_beside_delegated_is_a_configuration_error_saying_why(field: str) -> None:
    value = "0123456789abcdef0123456789abcdef01234567" if field == "thumbprint" else "S3cr3t~value~" * 3
    with pytest.raises(ConfigurationError) as refused:
        Settings.load({**DELEGATED, field: value})
    message = refused.value.message
    assert field in message and "public client" in message and "AADSTS700025" in message
    assert value not in message


def test_an_unknown_auth_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="auth_mode"):
        Settings.load({**DELEGATED, "auth_mode": "user"})


@pytest.mark.parametrize(("cloud", "expected"), [
    ("commercial", "https://api.securitycenter.microsoft.com/Ip.Read.All"),
    ("gcc", "https://securitycenter.onmicrosoft.com/windowsatpservice/Ip.Read.All"),
])
def test_the_delegated_scope_names_the_permission_instead_of_default(cloud: str, expected: str) -> None:
    assert delegated_scope(Settings.load({**DELEGATED, "cloud": cloud})) == expected


def test_an_explicit_delegated_scope_is_kept() -> None:
    scope = "https://api.securitycenter.microsoft.com/Ip.Read.All"
    assert delegated_scope(Settings.load({**DELEGATED, "scope": scope})) == scope


def test_the_installation_key_is_random_private_and_stable(tmp_path: Path) -> None:
    first = installation_key(tmp_path / "a")
    assert installation_key(tmp_path / "a") == first and len(first) == 32
    assert installation_key(tmp_path / "b") != first
    assert stat.S_IMODE((tmp_path / "a" / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700


def test_a_damaged_installation_key_is_a_configuration_error(tmp_path: Path) -> None:
    tmp_path.joinpath(KEY_FILE).write_bytes(b"short")
    with pytest.raises(ConfigurationError, match="damaged"):
        installation_key(tmp_path)


@pytest.mark.parametrize("params", [{"wait_s": -1}, {"wait_s": 901}, {"wait_s": "soon"}, {"wait": 5}])
def test_complete_sign_in_refuses_a_bad_wait(params: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        parse_wait(params)


def test_complete_sign_in_defaults_to_one_poll() -> None:
    assert parse_wait({}) == 0 and parse_wait({"wait_s": 900}) == 900


def test_the_manifest_declares_auth_mode_and_the_sign_in_actions() -> None:
    manifest = build_manifest()
    modes = manifest["configuration"]["properties"]["auth_mode"]["enum"]
    assert modes == ["application", "delegated", "managed_identity"]
    assert {"start_sign_in", "complete_sign_in", "sign_out"} <= set(manifest["actions"])
    wait = manifest["actions"]["complete_sign_in"]["input"]["properties"]["wait_s"]
    assert (wait["minimum"], wait["maximum"], wait["default"]) == (0, 900, 0)
