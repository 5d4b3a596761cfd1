"""Delegated sign-in in the emulator, driven by real MSAL (PublicClientApplication) over HTTPS:
the device authorization grant, the tokens it yields, and what the Defender API does with them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from emulator import Emulator
from emulator.testing import DEFENDER_IP_READ, https_session, public_msal_app, sign_in

SCOPES = [DEFENDER_IP_READ]
ONE_POLL: Callable[[dict[str, Any]], bool] = lambda _flow: True  # noqa: E731


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(device_code_interval_s=1)


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _stats(emu: Emulator, access_token: str) -> Any:
    return https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/10.209.67.177/stats",
                                          headers={"Authorization": f"Bearer {access_token}"})


def _assert_entra_error(result: dict[str, Any], error: str, code: int) -> None:
    assert result.get("error") == error, result
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith(f"AADSTS{code}: ")


def test_discovery_advertises_the_device_authorization_endpoint(emu: Emulator) -> None:
    config = https_session(emu.ca_path).get(f"{emu.authority}/v2.0/.well-known/openid-configuration").json()
    assert config["device_authorization_endpoint"] == f"{emu.authority}/oauth2/v2.0/devicecode"


def test_device_authorization_answers_what_msal_shows_the_person(emu: Emulator) -> None:
    flow = public_msal_app(emu).initiate_device_flow(SCOPES)
    assert len(flow["user_code"]) == 9 and flow["user_code"].isalnum()
    assert flow["verification_uri"] == f"{emu.base_url}/devicelogin"
    assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]
    assert (flow["interval"], flow["expires_in"]) == (1, 900)
    assert len(flow["device_code"]) > 40
    assert emu.counters()["device_code_requests"] == 1
    assert emu.counters()["token_requests"] == 0


def test_the_flow_is_pending_until_the_person_approves(emu: Emulator) -> None:
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    _assert_entra_error(pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL), "authorization_pending",
                        70016)
    assert emu.pending_device_codes()[0]["user_code"] == flow["user_code"]
    assert "device_code" not in json.dumps(emu.pending_device_codes())
    emu.approve_device_code(flow["user_code"], "analyst")
    result = pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL)
    assert result["token_source"] == "identity_provider"
    assert emu.pending_device_codes() == []


def test_approved_sign_in_yields_an_account_msal_can_find_again(emu: Emulator) -> None:
    pca = public_msal_app(emu)
    result = sign_in(emu, pca, "analyst")
    analyst = emu.users["analyst"]
    (account,) = pca.get_accounts()
    assert account["username"] == analyst.upn
    assert account["home_account_id"] == f"{analyst.object_id}.{emu.tenant_id}"
    assert account["local_account_id"] == analyst.object_id
    assert result["scope"].split() == [DEFENDER_IP_READ, "openid", "profile"]  # echoed, so MSAL's cache hits
    info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert info == {"uid": analyst.object_id, "utid": emu.tenant_id}


def test_id_token_names_the_user_for_this_client(emu: Emulator) -> None:
    result = sign_in(emu, public_msal_app(emu), "analyst2")
    claims = result["id_token_claims"]
    user = emu.users["analyst2"]
    assert claims["aud"] == emu.apps["delegated"].client_id
    assert claims["iss"] == f"{emu.authority}/v2.0"
    assert (claims["oid"], claims["tid"], claims["preferred_username"]) == (user.object_id, emu.tenant_id, user.upn)
    assert claims["sub"] and claims["sub"] != user.object_id
    assert claims["exp"] > claims["iat"] >= int(time.time()) - 5


def test_delegated_access_token_carries_scp_and_the_user_not_roles(emu: Emulator) -> None:
    claims = _claims(sign_in(emu, public_msal_app(emu), "analyst")["access_token"])
    analyst = emu.users["analyst"]
    assert claims["aud"] == "https://api.securitycenter.microsoft.com"
    assert claims["scp"] == "Ip.Read.All"
    assert "roles" not in claims
    assert (claims["upn"], claims["oid"], claims["tid"]) == (analyst.upn, analyst.object_id, emu.tenant_id)
    assert claims["appid"] == emu.apps["delegated"].client_id


def test_default_scope_grants_the_consented_delegated_permissions(emu: Emulator) -> None:
    result = sign_in(emu, public_msal_app(emu), "analyst", scopes=[emu.scope])
    assert _claims(result["access_token"])["scp"] == "Ip.Read.All"
    assert emu.scope in result["scope"].split()


def test_a_permission_without_consent_is_refused_when_redeemed(emu: Emulator) -> None:
    result = sign_in(emu, public_msal_app(emu), "analyst",
                     scopes=["https://api.securitycenter.microsoft.com/Machine.Read.All"])
    _assert_entra_error(result, "invalid_grant", 65001)


def test_a_user_with_view_data_reads_ip_statistics(emu: Emulator) -> None:
    response = _stats(emu, sign_in(emu, public_msal_app(emu), "analyst")["access_token"])
    assert response.status_code == 200
    assert response.json()["ipAddress"] == "10.209.67.177"
    assert emu.request_log()[-1]["detail"] == f"user {emu.users['analyst'].upn}"


def test_a_user_without_view_data_is_forbidden_despite_the_scope(emu: Emulator) -> None:
    token = sign_in(emu, public_msal_app(emu), "norole")["access_token"]
    assert _claims(token)["scp"] == "Ip.Read.All"
    response = _stats(emu, token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"
    assert "View data" in response.json()["error"]["message"]


def test_delegated_calls_share_the_applications_rate_limit(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(rate_limits=((2, 3600.0),))
    analyst = sign_in(emu, public_msal_app(emu), "analyst")["access_token"]
    colleague = sign_in(emu, public_msal_app(emu), "analyst2")["access_token"]
    statuses = [_stats(emu, t).status_code for t in (analyst, colleague, analyst)]
    assert statuses == [200, 200, 429]


def test_msal_polls_until_the_auto_approving_user_signs_in(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(device_code_interval_s=1, device_auto_approve="analyst", device_auto_approve_polls=2)
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    deadline = time.monotonic() + 10
    started = time.monotonic()
    result = pca.acquire_token_by_device_flow(flow, exit_condition=lambda _f: time.monotonic() > deadline)
    assert result["id_token_claims"]["preferred_username"] == emu.users["analyst"].upn
    assert 0.9 < time.monotonic() - started < 5  # one interval between the pending poll and the approved one
    assert emu.counters()["token_requests"] == 2


def test_declined_sign_in_stops_msal_polling(emu: Emulator) -> None:
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    emu.decline_device_code(flow["user_code"])
    _assert_entra_error(pca.acquire_token_by_device_flow(flow), "authorization_declined", 65004)
    assert emu.counters()["token_requests"] == 1


@pytest.mark.parametrize("how", ["control", "clock"])
def test_an_expired_code_answers_expired_token(emu: Emulator, how: str) -> None:
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    if how == "control":
        emu.expire_device_code(flow["user_code"])
    else:
        emu.advance_clock(901)
    _assert_entra_error(pca.acquire_token_by_device_flow(flow), "expired_token", 70019)


def test_an_unknown_device_code_is_a_bad_verification_code(emu: Emulator) -> None:
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    flow["device_code"] = "not-a-code"
    _assert_entra_error(pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL), "bad_verification_code",
                        70018)


def test_slow_down_makes_msal_lengthen_its_interval(emu: Emulator) -> None:
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    emu.slow_down_device_code(flow["user_code"])
    _assert_entra_error(pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL), "slow_down", 70016)
    assert flow["interval"] == 6
    emu.approve_device_code(flow["user_code"], "analyst")
    with pytest.warns(UserWarning, match="too soon"):
        assert "access_token" in pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL)


def test_public_client_flows_disabled_answers_invalid_client_7000218(emu: Emulator) -> None:
    emu.set_public_client_flows("delegated", False)
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    assert "user_code" in flow  # Entra hands out the code; redeeming it is what fails
    _assert_entra_error(pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL), "invalid_client", 7000218)
    assert emu.request_log()[-1]["status"] == 400


def test_a_confidential_app_cannot_sign_users_in_with_the_device_code(emu: Emulator) -> None:
    pca = public_msal_app(emu, app="reader")
    flow = pca.initiate_device_flow(SCOPES)
    _assert_entra_error(pca.acquire_token_by_device_flow(flow, exit_condition=ONE_POLL), "invalid_client", 7000218)


def test_conditional_access_can_block_the_device_flow(emu: Emulator) -> None:
    emu.block_device_flow("analyst")
    pca = public_msal_app(emu)
    _assert_entra_error(sign_in(emu, pca, "analyst"), "invalid_grant", 53003)
    assert "Conditional Access" in emu.request_log()[-1]["detail"]
    assert "access_token" in sign_in(emu, pca, "analyst2")


def test_a_public_client_that_sends_a_secret_is_refused_700025(emu: Emulator) -> None:
    flow = public_msal_app(emu).initiate_device_flow(SCOPES)
    emu.approve_device_code(flow["user_code"], "analyst")
    app = emu.apps["delegated"]
    response = https_session(emu.ca_path).post(f"{emu.authority}/oauth2/v2.0/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": app.client_id,
        "device_code": flow["device_code"], "client_secret": app.client_secret})
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("invalid_client", [700025])
    assert set(body) >= {"error_description", "timestamp", "trace_id", "correlation_id"}


def test_device_codes_are_for_a_tenant_not_common(emu: Emulator) -> None:
    response = https_session(emu.ca_path).post(f"{emu.base_url}/common/oauth2/v2.0/devicecode", data={
        "client_id": emu.apps["delegated"].client_id, "scope": DEFENDER_IP_READ})
    assert response.status_code == 400
    assert response.json()["error_codes"] == [9001023]


@pytest.mark.parametrize(("scope", "code"), [
    ("openid profile", 70011),
    ("Ip.Read.All", 70011),
    ("https://example.invalid/Ip.Read.All", 500011),
    (f"{DEFENDER_IP_READ} https://graph.microsoft.com/User.Read", 28000),
])
def test_device_authorization_refuses_bad_scopes(emu: Emulator, scope: str, code: int) -> None:
    response = https_session(emu.ca_path).post(f"{emu.authority}/oauth2/v2.0/devicecode", data={
        "client_id": emu.apps["delegated"].client_id, "scope": scope})
    assert response.status_code == 400
    assert response.json()["error_codes"] == [code]
