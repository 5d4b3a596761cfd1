"""The API checks the bearer token (signature, audience, expiry) and the Ip.Read.All role, before
anything else."""

from __future__ import annotations

import time
import uuid

from emulator import Emulator
from emulator.testing import https_session, msal_app


def _get(emu: Emulator, token: str | None, ip: str = "10.209.67.177"):  # type: ignore[no-untyped-def]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/{ip}/stats", headers=headers)


def _assert_defender_error(answer, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"]
    uuid.UUID(error["target"])


def test_no_token_is_401_unauthorized(emulator_session: Emulator) -> None:
    _assert_defender_error(_get(emulator_session, None), 401, "Unauthorized")


def test_an_altered_token_is_401(emulator_session: Emulator) -> None:
    token = emulator_session.issue_token("reader")
    head, payload, signature = token.split(".")
    tampered_signature = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    claims_swapped = f"{head}.{emulator_session.issue_token('noperm').split('.')[1]}.{signature}"
    for bad in (tampered_signature, claims_swapped, "not-a-jwt"):
        _assert_defender_error(_get(emulator_session, bad), 401, "Unauthorized")


def test_a_token_from_another_emulator_is_401(emulator_session: Emulator, emulator: Emulator) -> None:
    _assert_defender_error(_get(emulator_session, emulator.issue_token("reader")), 401, "Unauthorized")


def test_token_expires_when_the_emulated_clock_passes_its_lifetime(emulator: Emulator) -> None:
    result = msal_app(emulator).acquire_token_for_client([emulator.scope])
    assert _get(emulator, result["access_token"]).status_code == 200
    emulator.advance_clock(3601)
    _assert_defender_error(_get(emulator, result["access_token"]), 401, "Unauthorized")
    assert emulator.request_log()[-1]["detail"] == "token expired"


def test_token_expires_in_real_time_under_time_compression(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(time_scale=600.0, token_lifetime_s=600)  # one real second
    token = emu.issue_token("reader")
    assert _get(emu, token).status_code == 200
    time.sleep(1.05)
    _assert_defender_error(_get(emu, token), 401, "Unauthorized")


def test_app_without_ip_read_all_is_403_forbidden(emulator_session: Emulator) -> None:
    result = msal_app(emulator_session, "noperm").acquire_token_for_client([emulator_session.scope])
    answer = _get(emulator_session, result["access_token"])
    _assert_defender_error(answer, 403, "Forbidden")
    assert "Ip.Read.All" in answer.json()["error"]["message"]


def test_revoked_tokens_are_401(emulator: Emulator) -> None:
    token = emulator.issue_token("reader")
    emulator.revoke_tokens()
    _assert_defender_error(_get(emulator, token), 401, "Unauthorized")
    assert _get(emulator, emulator.issue_token("reader")).status_code == 200


def test_authentication_is_checked_before_the_input(emulator_session: Emulator) -> None:
    _assert_defender_error(_get(emulator_session, None, ip="256.1.1.1"), 401, "Unauthorized")
    noperm = emulator_session.issue_token("noperm")
    _assert_defender_error(_get(emulator_session, noperm, ip="256.1.1.1"), 403, "Forbidden")
