"""Every row of the mapping table, observed against the emulator over real HTTPS with real MSAL."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest

from connector.errors import Category
from connector.meaning import ip_scope
from emulator import Fault

from .helpers import api_requests, lookup, only

DOC_IP = "10.209.67.177"


def expected(emu, ip: str, hours: int) -> tuple[int, str | None, str | None]:  # type: ignore[no-untyped-def]
    prevalence, first, last = emu.org.stats(ip, hours, emu.now())
    def fmt(moment):  # type: ignore[no-untyped-def]
        if moment is None:
            return None
        moment = moment.astimezone(UTC).replace(microsecond=moment.microsecond)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if moment.microsecond:
            text += f".{moment.microsecond:06d}".rstrip("0")
        return text + "Z"
    return prevalence, fmt(first), fmt(last)


@pytest.mark.parametrize("generation", ["current", "legacy", "both"])
def test_a_seen_ip_gives_the_computed_statistics_in_every_generation(emulator, tmp_path: Path, generation: str) -> None:
    emulator.set_generation(generation)
    config = emulator.connector_config(app="reader", auth="secret")
    result = only(lookup(config, tmp_path, DOC_IP, 48))
    prevalence, first, last = expected(emulator, DOC_IP, 48)
    assert prevalence > 0
    assert result.status == "success" and result.error is None
    data = result.data[0]
    assert data["organizationPrevalence"] == prevalence and data["orgPrevalence"] == str(prevalence)
    assert data["seenInOrg"] is True and data["lookBackHours"] == 48
    assert data["orgFirstSeen"][:19] == first[:19] and data["orgLastSeen"][:19] == last[:19]
    assert data["orgFirstSeen"].endswith("Z")
    assert result.message.startswith(f"{DOC_IP} (private) is common in the organization: seen on {prevalence} "
                                     "devices in the last 48 hours, first ")
    assert data["verdict"] == result.summary["verdict"] == "common" and data["ipScope"] == "private"
    assert result.summary == {"organization_prevalence": prevalence, "seen_in_org": True, "verdict": "common",
                              "ip_scope": "private", "lane": "automation"}
    [request] = api_requests(emulator)
    assert request["path"] == f"/api/ips/{DOC_IP}/stats?lookBackHours=48"


def test_the_look_back_changes_the_answer(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret")
    short, long = (only(lookup(config, tmp_path, DOC_IP, h)).data[0]["organizationPrevalence"] for h in (1, 720))
    assert short < long
    assert (short, long) == (expected(emulator, DOC_IP, 1)[0], expected(emulator, DOC_IP, 720)[0])


@pytest.mark.parametrize("generation", ["current", "legacy", "both"])
def test_a_never_seen_ip_is_a_success_in_every_generation(emulator, tmp_path: Path, generation: str) -> None:
    emulator.set_generation(generation)
    ip = emulator.org.sample_ips(1, seen=False)[0]
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, ip))
    assert result.status == "success"
    scope = ip_scope(ip)
    assert result.data == [{"ipAddress": ip, "organizationPrevalence": 0, "orgPrevalence": "0", "orgFirstSeen": None,
                            "orgLastSeen": None, "seenInOrg": False, "lookBackHours": 720, "verdict": "not_seen",
                            "ipScope": scope.scope, "ipScopeDetail": scope.detail, "firstSeenAgeHours": None,
                            "lastSeenAgeHours": None, "newInWindow": False}]
    assert result.summary["verdict"] == "not_seen"  # the 404 of the older API and the 0 of the current one alike
    assert "not seen" in result.message
    assert [r["status"] for r in api_requests(emulator)] == [404 if generation == "legacy" else 200]


def test_ipv6_goes_out_canonical(emulator, tmp_path: Path) -> None:
    v6 = next(ip for ip in emulator.org.sample_ips(200, seen=True) if ":" in ip)
    shouted = v6.upper()
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, shouted))
    assert result.data[0]["ipAddress"] == v6 and result.data[0]["seenInOrg"] is True
    assert api_requests(emulator)[0]["path"].startswith(f"/api/ips/{v6}/stats")


def test_a_400_from_the_api_is_invalid_input_with_the_correlation_id(emulator, tmp_path: Path) -> None:
    body = b'{"error":{"code":"InvalidIpAddress","message":"Invalid IP","target":"corr-400-xyz"}}'
    emulator.inject_fault(Fault(route="api", status=400, body=body, content_type="application/json"), count=1)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP))
    assert result.status == "failed" and result.data == []
    assert result.error.category is Category.INVALID_INPUT
    assert (result.error.http_status, result.error.code, result.error.correlation_id) == (400, "InvalidIpAddress",
                                                                                          "corr-400-xyz")


def test_one_401_gets_a_fresh_token_and_one_retry(emulator, tmp_path: Path) -> None:
    body = b'{"error":{"code":"Unauthorized","message":"expired","target":"c-401"}}'
    emulator.inject_fault(Fault(route="api", status=401, body=body, content_type="application/json"), count=1)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP))
    assert result.status == "success"
    assert emulator.counters()["token_requests"] == 2
    assert [r["status"] for r in api_requests(emulator)] == [401, 200]


def test_a_401_after_the_refresh_is_authentication(emulator, tmp_path: Path) -> None:
    body = b'{"error":{"code":"Unauthorized","message":"no","target":"c-401b"}}'
    emulator.inject_fault(Fault(route="api", status=401, body=body, content_type="application/json"), count=2)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP))
    assert result.error.category is Category.AUTHENTICATION
    assert result.error.correlation_id == "c-401b"
    assert len(api_requests(emulator)) == 2


def test_403_names_the_permission_and_admin_consent(emulator, tmp_path: Path) -> None:
    result = only(lookup(emulator.connector_config(app="noperm", auth="secret"), tmp_path, DOC_IP))
    assert result.error.category is Category.PERMISSION and result.error.http_status == 403
    assert "Ip.Read.All" in result.message and "admin consent" in result.message
    assert result.error.correlation_id


def test_429_is_honoured_then_the_call_goes_through(emulator, tmp_path: Path) -> None:
    body = b'{"error":{"code":"TooManyRequests","message":"slow down","target":"c-429"}}'
    emulator.inject_fault(Fault(route="api", status=429, body=body, headers={"Retry-After": "1"},
                                content_type="application/json"), count=1)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP))
    assert result.status == "success"
    log = api_requests(emulator)
    assert [r["status"] for r in log] == [429, 200]
    assert log[1]["time"] - log[0]["time"] >= 0.95


def test_429_past_the_budget_is_rate_limited_with_retry_after(emulator, tmp_path: Path) -> None:
    body = b'{"error":{"code":"TooManyRequests","message":"slow down","target":"c-429b"}}'
    emulator.inject_fault(Fault(route="api", status=429, body=body, headers={"Retry-After": "45"},
                                content_type="application/json"), count=1)
    config = emulator.connector_config(app="reader", auth="secret")
    result = only(lookup(config, tmp_path, DOC_IP, item_budget_s=5))
    assert result.error.category is Category.RATE_LIMITED
    assert result.error.retry_after_s == pytest.approx(45, abs=1)
    assert result.error.correlation_id == "c-429b"
    assert len(api_requests(emulator)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_then_unavailable(emulator, tmp_path: Path, status: int) -> None:
    emulator.inject_fault(Fault(route="api", status=status, body=b"oops", content_type="text/plain"), count=1000)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP, item_budget_s=3))
    assert result.error.category is Category.UNAVAILABLE and result.error.http_status == status
    assert len(api_requests(emulator)) >= 2


def test_one_5xx_then_success(emulator, tmp_path: Path) -> None:
    emulator.inject_fault(Fault(route="api", status=503, body=b"busy", content_type="text/plain"), count=1)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP))
    assert result.status == "success"
    assert [r["status"] for r in api_requests(emulator)] == [503, 200]


@pytest.mark.parametrize("fault", [Fault(route="api", malformed=True), Fault(route="api", content_type="text/html"),
                                   Fault(route="api", status=200, body=b'{"foo": 1}',
                                         content_type="application/json")],
                         ids=["malformed-json", "html", "wrong-shape"])
def test_bad_bodies_are_unexpected_responses(emulator, tmp_path: Path, fault) -> None:  # type: ignore[no-untyped-def]
    emulator.inject_fault(fault, count=1)
    result = only(lookup(emulator.connector_config(app="reader", auth="secret"), tmp_path, DOC_IP))
    assert result.error.category is Category.UNEXPECTED_RESPONSE


def test_invalid_input_never_reaches_the_wire(emulator, tmp_path: Path) -> None:
    config = emulator.connector_config(app="reader", auth="secret")
    results = lookup(config, tmp_path, ["1.1.1.1/../machines", DOC_IP, "10.0.0.0/8", "fe80::1%eth0"], 48)
    assert [r.status for r in results] == ["failed", "success", "failed", "failed"]
    assert all(r.error.category is Category.INVALID_INPUT for r in results if r.error)
    assert [r["path"] for r in api_requests(emulator)] == [f"/api/ips/{DOC_IP}/stats?lookBackHours=48"]
    bad_hours = lookup(config, tmp_path, DOC_IP, 721)
    assert bad_hours[0].error.category is Category.INVALID_INPUT and len(api_requests(emulator)) == 1


def test_clock_is_pinned(emulator) -> None:
    assert abs(emulator.now() - emulator.now()) < timedelta(seconds=1)
