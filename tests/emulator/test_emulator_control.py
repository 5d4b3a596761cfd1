"""The control endpoint drives a standalone emulator over HTTPS, like the Python API."""

from __future__ import annotations

import json

import pytest

from emulator import Emulator
from emulator.testing import https_session


@pytest.fixture
def control(emulator: Emulator):  # type: ignore[no-untyped-def]
    session = https_session(emulator.ca_path)

    def call(method: str, route: str, payload: object = None):  # type: ignore[no-untyped-def]
        return session.request(method, f"{emulator.control_url}{route}", json=payload)

    return call


def _stats(emu: Emulator):  # type: ignore[no-untyped-def]
    return https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/10.209.67.177/stats",
                                          headers={"Authorization": f"Bearer {emu.issue_token('reader')}"})


def test_info_describes_the_emulator_without_secrets(emulator: Emulator, control) -> None:  # type: ignore[no-untyped-def]
    info = control("GET", "/info").json()
    assert info["tenant_id"] == emulator.tenant_id
    assert info["apps"]["reader"]["client_id"] == emulator.apps["reader"].client_id
    assert info["apps"]["noperm"]["roles"] == []
    text = json.dumps(info)
    for app in emulator.apps.values():
        assert app.client_secret and app.client_secret not in text
    assert "PRIVATE KEY" not in text


def test_faults_are_queued_listed_and_cleared(emulator: Emulator, control) -> None:  # type: ignore[no-untyped-def]
    queued = control("POST", "/faults", {"route": "api", "status": 503, "body": '{"x":1}',
                                          "headers": {"Retry-After": "3"}, "count": 2})
    assert queued.status_code == 200
    assert control("GET", "/faults").json()["pending"][0]["count"] == 2
    first = _stats(emulator)
    assert (first.status_code, first.content, first.headers["Retry-After"]) == (503, b'{"x":1}', "3")
    assert control("DELETE", "/faults").json() == {"pending": []}
    assert _stats(emulator).status_code == 200


def test_binary_fault_bodies_travel_as_base64(emulator: Emulator, control) -> None:  # type: ignore[no-untyped-def]
    control("POST", "/faults", {"status": 200, "body_b64": "AP8=", "content_type": "application/octet-stream"})
    assert _stats(emulator).content == b"\x00\xff"


def test_counters_and_log_are_readable(emulator: Emulator, control) -> None:  # type: ignore[no-untyped-def]
    _stats(emulator)
    assert control("GET", "/counters").json()["api_calls"] == 1
    (entry,) = control("GET", "/log").json()["requests"]
    assert entry["path"] == "/api/ips/10.209.67.177/stats"


def test_reset_clears_everything_by_default_or_what_is_asked(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=((1, 60),))
    session = https_session(emu.ca_path)
    assert _stats(emu).status_code == 200
    assert _stats(emu).status_code == 429
    session.post(f"{emu.control_url}/reset", json={"rate_limits": False})
    assert emu.counters()["api_calls"] == 0
    assert _stats(emu).status_code == 429
    assert session.post(f"{emu.control_url}/reset").json()["reset"] == ["observations", "rate_limits", "faults"]
    assert _stats(emu).status_code == 200


def test_generation_clock_and_revocation(emulator: Emulator, control) -> None:  # type: ignore[no-untyped-def]
    assert control("POST", "/generation", {"generation": "legacy"}).json() == {"generation": "legacy"}
    assert "orgPrevalence" in _stats(emulator).json()
    assert control("POST", "/generation", {"generation": "newest"}).status_code == 400
    token = emulator.issue_token("reader")
    control("POST", "/clock", {"advance_s": 7200})
    assert emulator.now().isoformat() == control("GET", "/info").json()["now"]
    expired = https_session(emulator.ca_path).get(f"{emulator.api_url}/api/ips/1.2.3.4/stats",
                                                  headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    fresh = emulator.issue_token("reader")
    control("POST", "/revoke-tokens")
    revoked = https_session(emulator.ca_path).get(f"{emulator.api_url}/api/ips/1.2.3.4/stats",
                                                  headers={"Authorization": f"Bearer {fresh}"})
    assert revoked.status_code == 401


def test_bad_control_requests_are_explained(control) -> None:  # type: ignore[no-untyped-def]
    assert control("GET", "/nothing").status_code == 404
    assert control("PUT", "/faults").status_code == 405
    assert control("POST", "/faults", {"route": "everywhere"}).status_code == 400
    assert control("POST", "/faults", {"colour": "red"}).status_code == 400
    assert control("POST", "/faults", [1, 2]).status_code == 400
