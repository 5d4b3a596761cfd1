"""MSAL obtains tokens with a secret and with a certificate (both credential forms), and the
emulated API accepts them; the tokens carry Entra's application-token claims."""

from __future__ import annotations

import jwt
import pytest

from emulator import Emulator
from emulator.config import DEFENDER_SCOPES, GRAPH_SCOPE
from emulator.testing import https_session, msal_app


def _stats(emu: Emulator, token: str, ip: str = "10.209.67.177"):  # type: ignore[no-untyped-def]
    return https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/{ip}/stats",
                                          headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("auth", ["secret", "certificate", "certificate_chain"])
def test_msal_gets_a_token_the_api_accepts(emulator_session: Emulator, auth: str) -> None:
    emulator_session.reset_rate_limits()
    result = msal_app(emulator_session, "reader", auth).acquire_token_for_client([emulator_session.scope])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    answer = _stats(emulator_session, result["access_token"])
    assert answer.status_code == 200
    assert answer.json()["ipAddress"] == "10.209.67.177"


@pytest.mark.parametrize(("auth", "acr"), [("secret", "1"), ("certificate", "2"), ("certificate_chain", "2")])
def test_token_claims_are_shaped_like_an_entra_application_token(emulator_session: Emulator, auth: str,
                                                                  acr: str) -> None:
    emu = emulator_session
    result = msal_app(emu, "reader", auth).acquire_token_for_client([emu.scope])
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    header = jwt.get_unverified_header(result["access_token"])
    assert header["alg"] == "RS256"
    assert claims["aud"] == "https://api.securitycenter.microsoft.com"
    assert claims["iss"] == f"https://sts.windows.net/{emu.tenant_id}/"
    assert claims["tid"] == emu.tenant_id
    assert claims["appid"] == emu.apps["reader"].client_id
    assert claims["roles"] == ["Ip.Read.All"]
    assert claims["appidacr"] == acr
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == result["expires_in"] == 3600
    assert result["ext_expires_in"] == result["expires_in"]


@pytest.mark.parametrize(("auth", "credential"), [
    ("secret", "client_secret"),
    ("certificate", "client_assertion RS256 x5t"),
    ("certificate_chain", "client_assertion PS256 x5t#S256"),
])
def test_msal_sends_the_credential_form_expected_for_each_configuration(emulator: Emulator, auth: str,
                                                                        credential: str) -> None:
    assert "access_token" in msal_app(emulator, "reader", auth).acquire_token_for_client([emulator.scope])
    (token_request,) = [e for e in emulator.request_log() if e["route"] == "token"]
    assert token_request["detail"] == credential


def test_msal_serves_the_second_request_from_its_cache(emulator: Emulator) -> None:
    app = msal_app(emulator)
    first = app.acquire_token_for_client([emulator.scope])
    second = app.acquire_token_for_client([emulator.scope])
    assert (first["token_source"], second["token_source"]) == ("identity_provider", "cache")
    assert emulator.counters()["token_requests"] == 1


def test_expires_in_is_the_emulated_lifetime_in_real_seconds(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(time_scale=10.0, token_lifetime_s=36_000)
    result = msal_app(emu).acquire_token_for_client([emu.scope])
    assert result["expires_in"] == 3600


def test_app_without_the_role_gets_a_token_without_a_roles_claim(emulator_session: Emulator) -> None:
    result = msal_app(emulator_session, "noperm").acquire_token_for_client([emulator_session.scope])
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert "roles" not in claims
    assert claims["appid"] == emulator_session.apps["noperm"].client_id


@pytest.mark.parametrize("scope", DEFENDER_SCOPES[1:])
def test_government_scopes_give_tokens_the_api_accepts(emulator_session: Emulator, scope: str) -> None:
    emulator_session.reset_rate_limits()
    result = msal_app(emulator_session).acquire_token_for_client([scope])
    assert jwt.decode(result["access_token"], options={"verify_signature": False})["aud"] == \
        scope.removesuffix("/.default")
    assert _stats(emulator_session, result["access_token"]).status_code == 200


def test_a_graph_token_is_issued_but_refused_by_the_api(emulator_session: Emulator) -> None:
    result = msal_app(emulator_session).acquire_token_for_client([GRAPH_SCOPE])
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://graph.microsoft.com"
    assert "roles" not in claims
    answer = _stats(emulator_session, result["access_token"])
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "Unauthorized"


def test_client_secret_in_a_basic_authorization_header_is_accepted(emulator_session: Emulator) -> None:
    emu = emulator_session
    reader = emu.apps["reader"]
    assert reader.client_secret is not None
    answer = https_session(emu.ca_path).post(
        f"{emu.login_url}/{emu.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": emu.scope},
        auth=(reader.client_id, reader.client_secret))
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"
