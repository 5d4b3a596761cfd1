"""Input validation and path handling of GET /api/ips/{ip}/stats."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from emulator import Emulator, EmulatorConfig
from emulator.pytest_plugin import PINNED_NOW
from emulator.testing import https_session


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(now=PINNED_NOW, rate_limits=())) as started:
        yield started


@pytest.fixture(scope="module")
def get(emu: Emulator):  # type: ignore[no-untyped-def]
    session = https_session(emu.ca_path)
    session.headers["Authorization"] = f"Bearer {emu.issue_token('reader')}"
    return lambda path: session.get(f"{emu.api_url}{path}")


@pytest.mark.parametrize("ip", ["256.1.1.1", "1.1.1", "10.209.67", "abc", "010.209.67.177", "1.2.3.4 ",
                                "fe80::1%25eth0", "2001:db8::1::1", "1.1.1.1%2F..", "%20", "1.2.3.4%00",
                                "1.2.3.4.5"])
def test_invalid_ip_is_400_invalid_ip_address(get, ip: str) -> None:  # type: ignore[no-untyped-def]
    answer = get(f"/api/ips/{ip}/stats")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "InvalidIpAddress"


@pytest.mark.parametrize("hours", ["0", "721", "-1", "abc", "1.5", "", "99999999999", "0x10"])
def test_invalid_lookback_is_400_invalid_input(get, hours: str) -> None:  # type: ignore[no-untyped-def]
    answer = get(f"/api/ips/10.209.67.177/stats?lookBackHours={hours}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "InvalidInput"


def test_every_error_has_a_fresh_correlation_id_in_target(get) -> None:  # type: ignore[no-untyped-def]
    targets = [get("/api/ips/256.1.1.1/stats").json()["error"]["target"] for _ in range(3)]
    assert len(set(targets)) == 3
    for target in targets:
        uuid.UUID(target)


def test_lookback_bounds_and_default(get) -> None:  # type: ignore[no-untyped-def]
    assert get("/api/ips/10.209.67.177/stats?lookBackHours=1").status_code == 200
    explicit = get("/api/ips/10.209.67.177/stats?lookBackHours=720").json()
    default = get("/api/ips/10.209.67.177/stats").json()
    assert explicit == default


def test_lookback_parameter_name_is_case_insensitive(get, emu: Emulator) -> None:  # type: ignore[no-untyped-def]
    answer = get("/api/ips/10.209.67.177/stats?lookbackhours=6").json()
    assert answer["organizationPrevalence"] == emu.org.stats("10.209.67.177", 6)[0]


def test_ipv6_spellings_are_the_same_address(get, emu: Emulator) -> None:  # type: ignore[no-untyped-def]
    ipv6 = next(ip for ip in emu.org.most_popular(50) if ":" in ip)
    spellings = {ipv6, ipv6.upper(), ipv6.replace(":", "%3A")}
    answers = [get(f"/api/ips/{spelling}/stats").json() for spelling in spellings]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["ipAddress"] == ipv6
    assert answers[0]["organizationPrevalence"] > 0
    assert get("/api/ips/2001:DB8::1/stats").json()["ipAddress"] == "2001:db8::1"
    assert get("/api/ips/2001:db8:0::1/stats").json()["ipAddress"] == "2001:db8::1"


def test_ipv4_mapped_ipv6_is_the_ipv4_address(get) -> None:  # type: ignore[no-untyped-def]
    mapped = get("/api/ips/::ffff:10.209.67.177/stats").json()
    plain = get("/api/ips/10.209.67.177/stats").json()
    assert mapped == plain


def test_versioned_path_gives_the_same_statistics(get) -> None:  # type: ignore[no-untyped-def]
    versioned = get("/api/v1.0/ips/10.209.67.177/stats?lookBackHours=48").json()
    latest = get("/api/ips/10.209.67.177/stats?lookBackHours=48").json()
    assert versioned.pop("@odata.context").endswith("/api/v1.0/$metadata#microsoft.windowsDefenderATP.api.InOrgIPStats")
    assert latest.pop("@odata.context").endswith("/api/$metadata#microsoft.windowsDefenderATP.api.InOrgIPStats")
    assert versioned == latest


@pytest.mark.parametrize("path", ["/api/machines", "/api/ips/1.1.1.1/stats/extra", "/api/ips/1.1.1.1",
                                  "/api/ips//stats", "/api/v2.0/ips/1.1.1.1/stats"])
def test_other_api_paths_are_404(get, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFound"


def test_stats_only_answers_get(emu: Emulator) -> None:
    session = https_session(emu.ca_path)
    answer = session.post(f"{emu.api_url}/api/ips/1.1.1.1/stats",
                          headers={"Authorization": f"Bearer {emu.issue_token('reader')}"})
    assert answer.status_code == 405
