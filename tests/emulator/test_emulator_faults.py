"""Scripted faults, from Python, on each route."""

from __future__ import annotations

import json
import socket
import ssl
import time

import msal
import pytest
import requests

from emulator import Emulator, Fault
from emulator.testing import https_session, msal_app


def _get(emu: Emulator, ip: str = "10.209.67.177", **kwargs):  # type: ignore[no-untyped-def]
    return https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/{ip}/stats",
                                          headers={"Authorization": f"Bearer {emu.issue_token('reader')}"},
                                          **kwargs)


def test_status_body_and_headers_replace_the_next_answer_only(emulator: Emulator) -> None:
    body = b'{"error":{"code":"ServiceUnavailable","message":"down","target":"x"}}'
    emulator.inject_fault(Fault(route="api", status=503, body=body, headers={"Retry-After": "7"}))
    faulted = _get(emulator)
    assert (faulted.status_code, faulted.content, faulted.headers["Retry-After"]) == (503, body, "7")
    assert _get(emulator).status_code == 200


def test_status_alone_gets_a_defender_shaped_body(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(status=500))
    answer = _get(emulator)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "InternalServerError"


def test_count_applies_the_fault_to_that_many_requests(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(status=502), count=2)
    assert [_get(emulator).status_code for _ in range(3)] == [502, 502, 200]


def test_count_none_lasts_until_cleared(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(status=500), count=None)
    assert [_get(emulator).status_code for _ in range(3)] == [500, 500, 500]
    emulator.clear_faults()
    assert _get(emulator).status_code == 200


def test_delay_alone_delays_the_normal_answer(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(delay_s=0.4))
    started = time.perf_counter()
    answer = _get(emulator)
    assert time.perf_counter() - started >= 0.4
    assert answer.status_code == 200
    emulator.inject_fault(Fault(delay_s=2.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        _get(emulator, timeout=(2, 0.3))


def test_reset_drops_the_connection_without_an_answer(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(reset=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        _get(emulator)
    entry = emulator.request_log()[-1]
    assert (entry["status"], entry["fault"]) == (None, "reset")
    assert _get(emulator).status_code == 200


def test_reset_sends_not_a_single_byte_back(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(reset=True))
    port = int(emulator.base_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=emulator.ca_path)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False) as tls:
        tls.sendall(b"GET /api/ips/1.2.3.4/stats HTTP/1.1\r\nHost: emulator\r\n\r\n")
        with pytest.raises((ssl.SSLEOFError, ConnectionResetError)):
            tls.recv(1024)


def test_malformed_json_is_valid_http_with_a_broken_body(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(malformed=True))
    answer = _get(emulator)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == len(answer.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def test_truncated_body_announces_more_than_it_sends(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(truncated=True))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        _get(emulator)
    assert _get(emulator).status_code == 200


def test_wrong_content_type_with_a_portal_page(emulator: Emulator) -> None:
    page = b"<html><body>Sign in to continue</body></html>"
    emulator.inject_fault(Fault(status=200, body=page, content_type="text/html; charset=utf-8"))
    answer = _get(emulator)
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.content == page


def test_a_big_body_arrives_intact(emulator: Emulator) -> None:
    big = b'{"padding":"' + b"x" * 3_000_000 + b'"}'
    emulator.inject_fault(Fault(status=200, body=big))
    assert _get(emulator).content == big


def test_token_route_faults_reach_msal(emulator: Emulator) -> None:
    app = msal_app(emulator)
    emulator.inject_fault(Fault(route="token", status=400))
    result = app.acquire_token_for_client([emulator.scope])
    assert result["error"] == "invalid_request"
    assert emulator.request_log()[-1]["route"] == "token"


def test_discovery_faults_make_msal_fail_to_start(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(route="discovery", status=404, body=b"{}"))
    with pytest.raises(ValueError):
        msal_app(emulator)
    assert msal_app(emulator) is not None


def test_route_any_applies_to_whichever_request_comes_next(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(route="any", status=500), count=2)
    session = https_session(emulator.ca_path)
    discovery = session.get(f"{emulator.login_url}/{emulator.tenant_id}/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 500
    assert discovery.json()["error"] == "temporarily_unavailable"
    assert _get(emulator).status_code == 500
    assert _get(emulator).status_code == 200


def test_faults_on_one_route_leave_the_others_alone(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(route="token", status=500))
    assert _get(emulator).status_code == 200
    assert emulator.pending_faults()[0]["route"] == "token"


def test_a_fault_is_validated_when_made() -> None:
    with pytest.raises(ValueError):
        Fault(route="everything")
    with pytest.raises(ValueError):
        Fault(status=42)


def test_an_injected_5xx_on_the_token_route_raises_in_msal(emulator: Emulator) -> None:
    app = msal_app(emulator)
    emulator.inject_fault(Fault(route="token", status=500))
    with pytest.raises(msal.exceptions.MsalServiceError):
        app.acquire_token_for_client([emulator.scope])
