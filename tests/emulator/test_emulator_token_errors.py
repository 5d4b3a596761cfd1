"""Token endpoint refusals carry Entra's AADSTS body and status; MSAL gets the shape it expects
(a dict for 4xx, an exception for 5xx)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import msal
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from emulator import Emulator, Fault
from emulator.entra import JWT_BEARER
from emulator.pki import b64url, make_client_certificate
from emulator.testing import https_session, msal_app

ENTRA_FIELDS = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
                "error_uri"}


def _post(emu: Emulator, data: dict[str, str], tenant: str | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
    return https_session(emu.ca_path).post(
        f"{emu.login_url}/{tenant or emu.tenant_id}/oauth2/v2.0/token", data=data, **kwargs)


def _secret_form(emu: Emulator, **changes: str) -> dict[str, str]:
    reader = emu.apps["reader"]
    form = {"grant_type": "client_credentials", "client_id": reader.client_id,
            "client_secret": reader.client_secret or "", "scope": emu.scope}
    form.update(changes)
    return {k: v for k, v in form.items() if v != "-"}


def _assert_entra_error(answer: Any, status: int, error: str, code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) >= ENTRA_FIELDS
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert "\r\nCorrelation ID: " in body["error_description"]
    return body


def test_wrong_secret_is_invalid_client_7000215_and_msal_returns_it_as_a_dict(emulator_session: Emulator) -> None:
    emu = emulator_session
    app = msal.ConfidentialClientApplication(
        emu.apps["reader"].client_id, client_credential="not-the-secret", authority=emu.authority,
        instance_discovery=False, http_client=https_session(emu.ca_path))
    result = app.acquire_token_for_client([emu.scope])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert "Invalid client secret provided" in result["error_description"]
    correlation = str(uuid.uuid4())
    _assert_entra_error(_post(emu, _secret_form(emu, client_secret="wrong"),
                              headers={"client-request-id": correlation}), 401, "invalid_client", 7000215)


def test_correlation_id_echoes_the_client_request_id(emulator_session: Emulator) -> None:
    correlation = str(uuid.uuid4())
    answer = _post(emulator_session, _secret_form(emulator_session, client_secret="wrong"),
                   headers={"client-request-id": correlation})
    assert answer.json()["correlation_id"] == correlation
    assert f"Correlation ID: {correlation}" in answer.json()["error_description"]


def test_unknown_client_is_unauthorized_client_700016(emulator_session: Emulator) -> None:
    stranger = str(uuid.uuid4())
    body = _assert_entra_error(_post(emulator_session, _secret_form(emulator_session, client_id=stranger)),
                               400, "unauthorized_client", 700016)
    assert stranger in body["error_description"]


def test_an_app_of_another_tenant_is_unknown_here(make_emulator) -> None:  # type: ignore[no-untyped-def]
    from emulator import AppSpec

    emu = make_emulator(tenants=("main", "partner"),
                        apps=(AppSpec("reader"), AppSpec("partner_app", tenant="partner")))
    partner = emu.apps["partner_app"]
    form = _secret_form(emu, client_id=partner.client_id, client_secret=partner.client_secret or "")
    _assert_entra_error(_post(emu, form), 400, "unauthorized_client", 700016)
    assert _post(emu, form, tenant=partner.tenant_id).status_code == 200


def test_unknown_tenant_at_the_token_endpoint_is_invalid_tenant_90002(emulator_session: Emulator) -> None:
    _assert_entra_error(_post(emulator_session, _secret_form(emulator_session), tenant=str(uuid.uuid4())),
                        400, "invalid_tenant", 90002)


@pytest.mark.parametrize(("scope", "error", "code"), [
    ("https://api.securitycenter.microsoft.com/Ip.Read.All", "invalid_scope", 1002012),
    ("https://api.securitycenter.microsoft.com/.default openid", "invalid_scope", 70011),
    ("https://unknown.example.com/.default", "invalid_resource", 500011),
    ("-", "invalid_request", 900144),
])
def test_bad_scopes_are_refused(emulator_session: Emulator, scope: str, error: str, code: int) -> None:
    _assert_entra_error(_post(emulator_session, _secret_form(emulator_session, scope=scope)), 400, error, code)


def test_resource_parameter_is_not_supported_on_v2(emulator_session: Emulator) -> None:
    form = _secret_form(emulator_session, resource="https://api.securitycenter.microsoft.com")
    _assert_entra_error(_post(emulator_session, form), 400, "invalid_request", 901002)


def test_no_credential_at_all_is_7000218(emulator_session: Emulator) -> None:
    _assert_entra_error(_post(emulator_session, _secret_form(emulator_session, client_secret="-")),
                        401, "invalid_client", 7000218)


def test_other_grant_types_are_unsupported(emulator_session: Emulator) -> None:
    _assert_entra_error(_post(emulator_session, _secret_form(emulator_session, grant_type="password")),
                        400, "unsupported_grant_type", 70003)


def test_token_endpoint_only_accepts_post(emulator_session: Emulator) -> None:
    emu = emulator_session
    answer = https_session(emu.ca_path).get(f"{emu.login_url}/{emu.tenant_id}/oauth2/v2.0/token")
    _assert_entra_error(answer, 400, "invalid_request", 900561)


# ---- client assertions --------------------------------------------------------------------

def _assertion(emu: Emulator, *, key_pem: str | None = None, header: dict[str, str] | None = None,
               algorithm: str = "RS256", **claims: Any) -> str:
    reader = emu.apps["reader"]
    now = time.time()
    payload: dict[str, Any] = {"aud": f"{emu.login_url}/{emu.tenant_id}/oauth2/v2.0/token",
                               "iss": reader.client_id, "sub": reader.client_id, "jti": str(uuid.uuid4()),
                               "iat": int(now), "nbf": int(now), "exp": int(now) + 600}
    payload.update(claims)
    thumbprint = bytes.fromhex(reader.thumbprint_sha1_hex or "")
    headers = header if header is not None else {"x5t": b64url(thumbprint)}
    key: Any = load_pem_private_key((key_pem or reader.private_key_pem or "").encode(), None)
    if algorithm == "HS256":
        key = "a shared secret that is long enough for hs256"
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def _assertion_form(emu: Emulator, assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": emu.apps["reader"].client_id, "scope": emu.scope,
            "client_assertion_type": JWT_BEARER, "client_assertion": assertion}


def test_hand_made_rs256_and_ps256_assertions_are_accepted(emulator_session: Emulator) -> None:
    emu = emulator_session
    reader = emu.apps["reader"]
    rs256 = _assertion(emu)
    ps256 = _assertion(emu, algorithm="PS256",
                       header={"x5t#S256": b64url(bytes.fromhex(reader.thumbprint_sha256_hex or ""))})
    for assertion in (rs256, ps256):
        assert _post(emu, _assertion_form(emu, assertion)).status_code == 200


def test_assertion_signed_by_an_unregistered_certificate_is_700027(emulator_session: Emulator) -> None:
    emu = emulator_session
    stranger = make_client_certificate("stranger")
    assertion = _assertion(emu, key_pem=stranger.private_key_pem,
                           header={"x5t": b64url(bytes.fromhex(stranger.thumbprint_sha1_hex))})
    body = _assert_entra_error(_post(emu, _assertion_form(emu, assertion)), 401, "invalid_client", 700027)
    assert "The key was not found." in body["error_description"]
    assert stranger.thumbprint_sha1_hex in body["error_description"]


def test_assertion_whose_signature_does_not_verify_is_7000274(emulator_session: Emulator) -> None:
    emu = emulator_session
    stranger = make_client_certificate("stranger")
    assertion = _assertion(emu, key_pem=stranger.private_key_pem)  # registered thumbprint, wrong key
    _assert_entra_error(_post(emu, _assertion_form(emu, assertion)), 401, "invalid_client", 7000274)


def test_expired_assertion_is_700024(emulator_session: Emulator) -> None:
    past = int(time.time()) - 3600
    assertion = _assertion(emulator_session, iat=past - 600, nbf=past - 600, exp=past)
    body = _assert_entra_error(_post(emulator_session, _assertion_form(emulator_session, assertion)),
                               401, "invalid_client", 700024)
    assert "not within its valid time range" in body["error_description"]


def test_assertion_for_another_audience_is_refused(emulator_session: Emulator) -> None:
    assertion = _assertion(emulator_session, aud="https://login.microsoftonline.com/x/oauth2/v2.0/token")
    _assert_entra_error(_post(emulator_session, _assertion_form(emulator_session, assertion)),
                        401, "invalid_client", 50012)


def test_assertion_issued_for_another_client_is_700021(emulator_session: Emulator) -> None:
    other = str(uuid.uuid4())
    assertion = _assertion(emulator_session, iss=other, sub=other)
    _assert_entra_error(_post(emulator_session, _assertion_form(emulator_session, assertion)),
                        401, "invalid_client", 700021)


def test_assertion_with_a_symmetric_algorithm_is_refused(emulator_session: Emulator) -> None:
    assertion = _assertion(emulator_session, algorithm="HS256")
    _assert_entra_error(_post(emulator_session, _assertion_form(emulator_session, assertion)),
                        401, "invalid_client", 700027)


def test_garbage_assertion_is_malformed_50027(emulator_session: Emulator) -> None:
    _assert_entra_error(_post(emulator_session, _assertion_form(emulator_session, "not.a.jwt")),
                        400, "invalid_request", 50027)


def test_certificate_credential_of_an_app_without_certificate_is_refused(emulator_session: Emulator) -> None:
    emu = emulator_session
    form = dict(_assertion_form(emu, _assertion(emu)), client_id=emu.apps["noperm"].client_id)
    body = _assert_entra_error(_post(emu, form), 401, "invalid_client", 700027)
    assert "The key was not found." in body["error_description"]


def test_a_5xx_from_the_token_endpoint_makes_msal_raise(emulator: Emulator) -> None:
    app = msal_app(emulator)
    emulator.inject_fault(Fault(route="token", status=503))
    with pytest.raises(msal.exceptions.MsalServiceError):
        app.acquire_token_for_client([emulator.scope])
