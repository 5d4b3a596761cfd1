"""OIDC discovery and JWKS, as MSAL fetches them, pointing back at the emulator."""

from __future__ import annotations

import jwt
import msal
import pytest

from emulator import Emulator
from emulator.testing import https_session


def _discover(emu: Emulator, tenant: str):  # type: ignore[no-untyped-def]
    return https_session(emu.ca_path).get(f"{emu.login_url}/{tenant}/v2.0/.well-known/openid-configuration")


def test_discovery_endpoints_point_back_at_the_emulator(emulator_session: Emulator) -> None:
    emu = emulator_session
    config = _discover(emu, emu.tenant_id).json()
    assert config["token_endpoint"] == f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/token"
    assert config["issuer"] == f"{emu.base_url}/{emu.tenant_id}/v2.0"
    assert config["jwks_uri"].startswith(emu.base_url)
    assert config["authorization_endpoint"].startswith(emu.base_url)


def test_discovery_by_domain_name_resolves_to_the_tenant_guid(emulator_session: Emulator) -> None:
    emu = emulator_session
    config = _discover(emu, emu.tenant_domain).json()
    assert config["token_endpoint"] == f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/token"


def test_jwks_publishes_the_key_that_signs_access_tokens(emulator_session: Emulator) -> None:
    emu = emulator_session
    session = https_session(emu.ca_path)
    keys = session.get(_discover(emu, emu.tenant_id).json()["jwks_uri"]).json()["keys"]
    token = emu.issue_token("reader")
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [k for k in keys if k["kid"] == kid]
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="https://api.securitycenter.microsoft.com")
    assert claims["tid"] == emu.tenant_id


def test_unknown_tenant_discovery_is_an_aadsts90002_error(emulator_session: Emulator) -> None:
    answer = _discover(emulator_session, "11111111-2222-3333-4444-555555555555")
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant '11111111-2222-3333-4444-555555555555' not found.")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


def test_malformed_tenant_identifier_is_an_aadsts900023_error(emulator_session: Emulator) -> None:
    answer = _discover(emulator_session, "not_a_tenant!")
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == [900023]


def test_msal_refuses_to_build_an_app_for_an_unknown_tenant(emulator_session: Emulator) -> None:
    emu = emulator_session
    with pytest.raises(ValueError, match="tenant"):
        msal.ConfidentialClientApplication(
            emu.apps["reader"].client_id, client_credential=emu.apps["reader"].client_secret,
            authority=f"{emu.login_url}/contoso-unknown.onmicrosoft.com", instance_discovery=False,
            http_client=https_session(emu.ca_path))
