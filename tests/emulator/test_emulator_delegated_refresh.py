"""The refresh-token grant as MSAL's acquire_token_silent uses it: rotation, inactivity, revocation
and the per-user refusals (sign-in frequency, MFA), plus the control endpoint that scripts them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import msal
import pytest

from emulator import Emulator
from emulator.testing import DEFENDER_IP_READ, https_session, public_msal_app, sign_in

SCOPES = [DEFENDER_IP_READ]
DAY = 86_400.0


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    # 200 s tokens: MSAL treats anything under 300 s left as expired, so every silent call refreshes.
    return make_emulator(device_code_interval_s=1, token_lifetime_s=200)


def _signed_in(emu: Emulator, user: str = "analyst") -> tuple[msal.PublicClientApplication, dict[str, Any]]:
    pca = public_msal_app(emu)
    assert "access_token" in sign_in(emu, pca, user)
    (account,) = pca.get_accounts()
    return pca, account


def _refresh_tokens(pca: msal.PublicClientApplication) -> list[str]:
    return [rt["secret"] for rt in pca.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)]


def _raw_refresh(emu: Emulator, refresh_token: str) -> Any:
    return https_session(emu.ca_path).post(f"{emu.authority}/oauth2/v2.0/token", data={
        "grant_type": "refresh_token", "client_id": emu.apps["delegated"].client_id,
        "refresh_token": refresh_token, "scope": f"{DEFENDER_IP_READ} offline_access openid profile"})


def test_a_cached_access_token_is_used_without_a_token_request(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(device_code_interval_s=1)  # one-hour tokens
    pca, account = _signed_in(emu)
    before = emu.counters()["token_requests"]
    result = pca.acquire_token_silent_with_error(SCOPES, account)
    assert result is not None and result["token_source"] == "cache"
    assert emu.counters()["token_requests"] == before


def test_silent_call_after_expiry_refreshes_and_rotates_the_refresh_token(emu: Emulator) -> None:
    pca, account = _signed_in(emu)
    (first_rt,) = _refresh_tokens(pca)
    result = pca.acquire_token_silent_with_error(SCOPES, account)
    assert result is not None and result["token_source"] == "identity_provider"
    (second_rt,) = _refresh_tokens(pca)
    assert second_rt != first_rt
    assert emu.request_log()[-1]["detail"] == f"refresh_token {emu.users['analyst'].upn}"
    assert jwt.decode(result["access_token"], options={"verify_signature": False})["scp"] == "Ip.Read.All"


def test_an_old_refresh_token_still_works_after_rotation(emu: Emulator) -> None:
    pca, account = _signed_in(emu)
    (first_rt,) = _refresh_tokens(pca)
    assert pca.acquire_token_silent_with_error(SCOPES, account) is not None
    response = _raw_refresh(emu, first_rt)
    assert response.status_code == 200
    assert response.json()["refresh_token"] not in (first_rt, *_refresh_tokens(pca))


def test_a_refresh_token_unused_for_90_days_expires_700082(emu: Emulator) -> None:
    pca, account = _signed_in(emu)
    emu.advance_clock(90 * DAY + 1)
    result = pca.acquire_token_silent_with_error(SCOPES, account)
    assert result is not None and result["error"] == "invalid_grant"
    assert result["error_codes"] == [700082]
    assert "inactive for 90.00:00:00" in result["error_description"]


def test_a_refresh_token_used_within_the_window_keeps_working(emu: Emulator) -> None:
    pca, account = _signed_in(emu)
    for _ in range(3):
        emu.advance_clock(60 * DAY)
        result = pca.acquire_token_silent_with_error(SCOPES, account)
        assert result is not None and "access_token" in result, result


@pytest.mark.parametrize(("script", "code"), [
    (lambda emu: emu.revoke_refresh_tokens("analyst"), 50173),
    (lambda emu: emu.expire_refresh_tokens("analyst"), 700082),
    (lambda emu: emu.refuse_refresh("analyst", 70043), 70043),
    (lambda emu: emu.refuse_refresh("analyst", 50076), 50076),
    (lambda emu: emu.refuse_refresh("analyst", 50078), 50078),
])
def test_scripted_refusals_fail_the_refresh_with_invalid_grant(emu: Emulator, script: Callable[[Emulator], None],
                                                                code: int) -> None:
    pca, account = _signed_in(emu)
    script(emu)
    result = pca.acquire_token_silent_with_error(SCOPES, account)
    assert result is not None and result["error"] == "invalid_grant", result
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith(f"AADSTS{code}: ")


def test_a_refusal_touches_only_that_user_and_a_new_sign_in_clears_it(emu: Emulator) -> None:
    analyst_app, analyst = _signed_in(emu, "analyst")
    colleague_app, colleague = _signed_in(emu, "analyst2")
    emu.revoke_refresh_tokens("analyst")
    assert "access_token" in (colleague_app.acquire_token_silent_with_error(SCOPES, colleague) or {})
    assert "error" in (analyst_app.acquire_token_silent_with_error(SCOPES, analyst) or {})
    fresh_app, fresh = _signed_in(emu, "analyst")
    assert "access_token" in (fresh_app.acquire_token_silent_with_error(SCOPES, fresh) or {})


def test_refresh_tokens_belong_to_their_client(emu: Emulator) -> None:
    pca, _ = _signed_in(emu)
    (rt,) = _refresh_tokens(pca)
    response = https_session(emu.ca_path).post(f"{emu.authority}/oauth2/v2.0/token", data={
        "grant_type": "refresh_token", "client_id": emu.apps["reader"].client_id, "refresh_token": rt,
        "client_secret": emu.apps["reader"].client_secret, "scope": DEFENDER_IP_READ})
    assert (response.status_code, response.json()["error_codes"]) == (400, [70000])
    assert _raw_refresh(emu, "0.Anot-a-token").json()["error_codes"] == [9002313]


# ---- the control endpoint (for a standalone emulator) ---------------------------------------

@pytest.fixture
def control(emu: Emulator) -> Callable[..., Any]:
    session = https_session(emu.ca_path)

    def call(route: str, payload: object = None, method: str = "POST") -> Any:
        response = session.request(method, f"{emu.control_url}{route}", json=payload)
        assert response.status_code == 200, response.text
        return response.json()

    return call


def test_control_approves_a_pending_code_as_a_named_user(emu: Emulator, control: Callable[..., Any]) -> None:
    pca = public_msal_app(emu)
    flow = pca.initiate_device_flow(SCOPES)
    (pending,) = control("/device-codes", method="GET")["pending"]
    assert pending["user_code"] == flow["user_code"] and "device_code" not in pending
    control("/device-codes/approve", {"user_code": flow["user_code"], "user": "analyst2"})
    result = pca.acquire_token_by_device_flow(flow, exit_condition=lambda _f: True)
    assert result["id_token_claims"]["preferred_username"] == emu.users["analyst2"].upn


def test_control_declines_and_expires_codes(emu: Emulator, control: Callable[..., Any]) -> None:
    pca = public_msal_app(emu)
    declined, expired = pca.initiate_device_flow(SCOPES), pca.initiate_device_flow(SCOPES)
    control("/device-codes/decline", {"user_code": declined["user_code"]})
    control("/device-codes/expire", {"user_code": expired["user_code"]})
    assert pca.acquire_token_by_device_flow(declined)["error"] == "authorization_declined"
    assert pca.acquire_token_by_device_flow(expired)["error"] == "expired_token"


def test_control_revokes_and_expires_a_users_refresh_tokens(emu: Emulator, control: Callable[..., Any]) -> None:
    pca, account = _signed_in(emu)
    control("/users/revoke", {"user": "analyst"})
    assert (pca.acquire_token_silent_with_error(SCOPES, account) or {}).get("error_codes") == [50173]
    pca2, account2 = _signed_in(emu, "analyst2")
    control("/users/refuse-refresh", {"user": "analyst2", "code": 50076})
    assert (pca2.acquire_token_silent_with_error(SCOPES, account2) or {}).get("error_codes") == [50076]


def test_control_flips_public_client_flows_and_auto_approval(emu: Emulator, control: Callable[..., Any]) -> None:
    control("/apps/public-client", {"app": "delegated", "enabled": False})
    assert control("/info", method="GET")["apps"]["delegated"]["public_client"] is False
    assert sign_in(emu, public_msal_app(emu))["error_codes"] == [7000218]
    control("/apps/public-client", {"app": "delegated", "enabled": True})
    control("/device-codes/auto-approve", {"user": "analyst", "after_polls": 1})
    pca = public_msal_app(emu)
    result = pca.acquire_token_by_device_flow(pca.initiate_device_flow(SCOPES), exit_condition=lambda _f: True)
    assert result["id_token_claims"]["preferred_username"] == emu.users["analyst"].upn


def test_control_refuses_unknown_users_and_codes(emu: Emulator) -> None:
    session = https_session(emu.ca_path)
    for route, payload in [("/device-codes/approve", {"user_code": "NOPE", "user": "analyst"}),
                           ("/users/revoke", {"user": "mallory"}),
                           ("/users/refuse-refresh", {"user": "analyst", "code": 12345})]:
        response = session.post(f"{emu.control_url}{route}", json=payload)
        assert response.status_code == 400, route


def test_info_lists_users_and_their_view_data_role_without_secrets(control: Callable[..., Any],
                                                                   emu: Emulator) -> None:
    info = control("/info", method="GET")
    assert info["users"]["analyst"]["view_data"] is True
    assert info["users"]["norole"]["view_data"] is False
    assert info["apps"]["delegated"]["delegated"] == ["Ip.Read.All"]
    assert emu.apps["delegated"].client_secret not in str(info)


def test_delegated_connector_config_has_no_secret(emu: Emulator) -> None:
    config = emu.delegated_config()
    assert config["auth_mode"] == "delegated"
    assert config["client_id"] == emu.apps["delegated"].client_id
    assert not {"client_secret", "private_key"} & set(config)


def test_connector_files_include_a_delegated_configuration(emu: Emulator, tmp_path: Any) -> None:
    import json

    paths = emu.write_connector_files(tmp_path)
    config = json.loads(paths["connector_delegated"].read_text())
    assert config == dict(emu.delegated_config(), ca_bundle=str(paths["ca"]))


def test_standalone_flags_configure_the_auto_approving_user() -> None:
    from emulator.cli import build_parser

    args = build_parser().parse_args(["serve", "--out", "x", "--auto-approve", "analyst", "--auto-approve-polls",
                                      "3", "--device-code-interval", "1"])
    assert (args.auto_approve, args.auto_approve_polls, args.device_code_interval) == ("analyst", 3, 1)
