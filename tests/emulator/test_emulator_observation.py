"""Counters and the request log report what actually crossed the wire."""

from __future__ import annotations

from emulator import Emulator, Fault
from emulator.testing import https_session, msal_app


def test_counters_count_token_requests_api_calls_and_429s_per_app(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=((2, 60),))
    reader, noperm = emu.apps["reader"].client_id, emu.apps["noperm"].client_id
    session = https_session(emu.ca_path)
    token = msal_app(emu, "reader").acquire_token_for_client([emu.scope])["access_token"]
    msal_app(emu, "noperm").acquire_token_for_client([emu.scope])
    for _ in range(3):
        session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats", headers={"Authorization": f"Bearer {token}"})
    session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats")  # no token: still an API call
    emu.inject_fault(Fault(status=503))
    session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats", headers={"Authorization": f"Bearer {token}"})
    counters = emu.counters()
    assert (counters["token_requests"], counters["api_calls"], counters["http_429"]) == (2, 5, 1)
    assert counters["per_app"][reader] == {"token_requests": 1, "api_calls": 4, "http_429": 1}
    assert counters["per_app"][noperm] == {"token_requests": 1, "api_calls": 0, "http_429": 0}


def test_the_log_records_each_request_as_received(emulator: Emulator) -> None:
    session = https_session(emulator.ca_path)
    token = emulator.issue_token("reader")
    session.get(f"{emulator.api_url}/api/ips/2001:db8::1/stats?lookBackHours=5",
                headers={"Authorization": f"Bearer {token}"})
    emulator.inject_fault(Fault(status=500))
    session.get(f"{emulator.api_url}/api/ips/1.2.3.4/stats", headers={"Authorization": f"Bearer {token}"})
    first, second = emulator.request_log()
    assert {"time", "method", "path", "route", "status", "client_id", "fault"} <= set(first)
    assert first["path"] == "/api/ips/2001:db8::1/stats?lookBackHours=5"
    assert (first["method"], first["route"], first["status"], first["fault"]) == ("GET", "api", 200, None)
    assert first["client_id"] == emulator.apps["reader"].client_id
    assert (second["status"], second["fault"]) == (500, "status=500")
    assert second["client_id"] == emulator.apps["reader"].client_id


def test_control_requests_are_neither_logged_nor_counted(emulator: Emulator) -> None:
    https_session(emulator.ca_path).get(f"{emulator.control_url}/counters")
    assert emulator.request_log() == []
    assert emulator.counters()["api_calls"] == 0


def test_reset_observations_keeps_the_rate_limit_windows(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=((1, 60),))
    session = https_session(emu.ca_path)
    session.headers["Authorization"] = f"Bearer {emu.issue_token('reader')}"
    assert session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats").status_code == 200
    emu.reset_observations()
    assert emu.request_log() == [] and emu.counters()["api_calls"] == 0
    assert session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats").status_code == 429
    emu.reset_rate_limits()
    assert session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats").status_code == 200
