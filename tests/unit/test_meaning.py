"""What an answer means: verdict, IP scope and novelty, judged once in the core for every platform."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from connector.actions import Connector
from connector.interpret import Judgement, describe, interpret, summary_of
from connector.mapping import not_seen, statistics_from_body
from connector.meaning import age_hours, ago, ip_scope, new_in_window, verdict
from connector.models import load, to_builtins
from connector.ratelimit import UnlimitedGate
from connector.results import IpStatisticsResult, OrgStatistics
from connector.settings import Settings
from connector.state import MemoryStateStore

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("address", "scope", "detail"),
    [
        ("10.3.0.1", "private", None), ("172.16.5.4", "private", None), ("192.168.1.1", "private", None),
        ("fd12:3456::1", "private", None),
        ("8.8.8.8", "public", None), ("2606:4700::1111", "public", None), ("192.0.0.9", "public", None),
        ("127.0.0.1", "loopback", None), ("::1", "loopback", None),
        ("169.254.10.1", "link_local", None), ("fe80::1", "link_local", None),
        ("224.0.0.251", "multicast", None), ("ff02::fb", "multicast", None),
        ("100.64.0.1", "shared", None), ("100.127.255.254", "shared", None),
        ("192.0.2.10", "reserved", "documentation"), ("203.0.113.77", "reserved", "documentation"),
        ("2001:db8::1", "reserved", "documentation"),
        ("198.18.0.1", "reserved", "benchmarking"), ("2001:2::1", "reserved", "benchmarking"),
        ("0.0.0.0", "reserved", "unspecified"),  # noqa: S104 (an address to classify, not a bind) ("::", "reserved", "unspecified"),
        ("255.255.255.255", "reserved", "broadcast"), ("240.0.0.1", "reserved", "future_use"),
        ("0.1.2.3", "reserved", "this_network"), ("fec0::1", "reserved", "site_local"),
        ("100::1", "reserved", "discard_only"),
    ],
)
def test_each_scope_class_v4_and_v6(address: str, scope: str, detail: str | None) -> None:
    judged = ip_scope(address)
    assert (judged.scope, judged.detail) == (scope, detail)


@pytest.mark.parametrize(("mapped", "scope"), [("::ffff:10.3.0.1", "private"), ("::ffff:8.8.8.8", "public"),
                                               ("::ffff:127.0.0.1", "loopback"), ("::ffff:100.64.0.9", "shared")])
def test_ipv4_mapped_ipv6_is_judged_as_its_ipv4_address(mapped: str, scope: str) -> None:
    assert ip_scope(mapped).scope == scope


@pytest.mark.parametrize(("devices", "expected"), [(0, "not_seen"), (1, "rare"), (5, "rare"), (6, "common"),
                                                   (63515, "common")])
def test_verdict_boundaries_at_the_default_threshold(devices: int, expected: str) -> None:
    assert verdict(devices, 5) == expected


@pytest.mark.parametrize("threshold", [1, 2, 50])
def test_verdict_threshold_is_inclusive_and_threshold_plus_one_is_common(threshold: int) -> None:
    assert verdict(threshold, threshold) == "rare"
    assert verdict(threshold + 1, threshold) == "common"


def test_the_older_apis_404_and_prevalence_zero_are_both_not_seen() -> None:
    from_404 = interpret(not_seen("203.0.113.77", 720), Judgement(), NOW)
    from_zero = interpret(statistics_from_body("203.0.113.77", 720, {"organizationPrevalence": 0}), Judgement(), NOW)
    for stats in (from_404, from_zero):
        assert (stats.verdict, stats.firstSeenAgeHours, stats.lastSeenAgeHours) == ("not_seen", None, None)
        assert stats.newInWindow is False
        assert stats.ipScope == "reserved" and stats.ipScopeDetail == "documentation"
    assert describe(from_404) == ("203.0.113.77 (reserved: documentation) was not seen on any device in the "
                                  "organization in the last 720 hours")


def test_rare_message_says_it_in_words() -> None:
    facts = statistics_from_body("10.3.0.1", 720, {"organizationPrevalence": 2, "orgFirstSeen": _at(3),
                                                   "orgLastSeen": _at(0.5)})
    stats = interpret(facts, Judgement(rare_device_threshold=5, novelty_hours=24), NOW)
    assert (stats.verdict, stats.ipScope, stats.firstSeenAgeHours, stats.lastSeenAgeHours) == ("rare", "private",
                                                                                               3.0, 0.5)
    assert stats.newInWindow is True
    assert describe(stats) == ("10.3.0.1 (private) is rare in the organization: seen on 2 devices in the last 720 "
                               "hours, first 3 hours ago (new), last 30 minutes ago")
    assert summary_of(stats) == {"organization_prevalence": 2, "seen_in_org": True, "verdict": "rare",
                                 "ip_scope": "private"}


@pytest.mark.parametrize(
    ("first_seen_h", "window_h", "novelty_h", "expected"),
    [
        (3, 720, 24, True),     # first seen lately in a long window: new
        (24, 720, 24, True),    # the boundary belongs to "new"
        (100, 720, 24, False),  # first seen long ago in the window
        (None, 720, 24, False),  # not seen at all: not new
        (3, 24, 24, None),      # the window is no longer than novelty_hours: cannot tell
        (3, 12, 24, None),
        (None, 12, 24, None),
        (3, 25, 24, True),
    ],
)
def test_novelty_with_short_and_long_windows(first_seen_h: float | None, window_h: int, novelty_h: int,
                                             expected: bool | None) -> None:
    assert new_in_window(first_seen_h, window_h, novelty_h) is expected


def test_ages_are_hours_to_the_answer_and_never_negative() -> None:
    assert age_hours(_at(36), NOW) == 36.0
    assert age_hours((NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"), NOW) == 0.0
    assert age_hours(None, NOW) is None
    assert [ago(h) for h in (0.001, 0.5, 1, 3.4, 47.6, 72)] == ["just now", "30 minutes ago", "1 hour ago",
                                                                  "3 hours ago", "48 hours ago", "3 days ago"]


class _OneAnswerClient:
    """Answers every lookup with the same facts, and counts the calls (a unit-test stand-in for Defender)."""

    def __init__(self, facts: OrgStatistics) -> None:
        self.facts = facts
        self.calls = 0

    def ip_stats(self, ip: str, lookback_hours: int, deadline: float, admission: object = None) -> OrgStatistics:
        self.calls += 1
        return self.facts


def _connector(tmp_path, **config) -> Connector:  # type: ignore[no-untyped-def]
    settings = Settings.load({"tenant_id": "contoso.onmicrosoft.com",
                              "client_id": "00000000-0000-0000-0000-000000000001",
                              "client_secret": "s3cret-for-unit-tests", "store_backend": "memory", **config})
    return Connector(settings, state_dir=tmp_path, shared_store=MemoryStateStore(), gate=UnlimitedGate())


def test_a_cached_answer_recomputes_its_ages_from_the_stored_timestamps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    connector = _connector(tmp_path, cache_ttl_s=7200)
    stored_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    first_seen = stored_hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ")  # "first seen 0 hours ago" when it was stored
    facts = OrgStatistics(ipAddress="10.3.0.1", organizationPrevalence=2, orgPrevalence="2", orgFirstSeen=first_seen,
                          orgLastSeen=first_seen, seenInOrg=True, lookBackHours=720)
    entry = {"format": 1, "stored_at": time.time() - 3600, "data": to_builtins(facts)}
    connector.cache._store.set(connector.cache._key("result", "10.3.0.1", 720), json.dumps(entry).encode())
    client = _OneAnswerClient(facts)
    connector.client = client  # type: ignore[assignment]

    result = connector.lookup("10.3.0.1", 720)

    assert client.calls == 0 and result.cached and result.cache_age_s >= 3599
    data = result.data[0]
    assert 0.99 <= data["firstSeenAgeHours"] <= 1.01 and 0.99 <= data["lastSeenAgeHours"] <= 1.01
    assert "first 1 hour ago" in result.message
    load(IpStatisticsResult, result.to_dict())  # the declared output shape


def test_a_cache_entry_of_another_shape_is_a_miss_and_is_replaced(tmp_path) -> None:  # type: ignore[no-untyped-def]
    connector = _connector(tmp_path, cache_ttl_s=900)
    key = connector.cache._key("result", "10.3.0.1", 720)
    damaged = {"format": 1, "stored_at": time.time(), "data": {"ipAddress": "10.3.0.1", "organizationPrevalence": -1}}
    connector.cache._store.set(key, json.dumps(damaged).encode())
    facts = OrgStatistics(ipAddress="10.3.0.1", organizationPrevalence=2, orgPrevalence="2", orgFirstSeen=_at(3),
                          orgLastSeen=_at(1), seenInOrg=True, lookBackHours=720)
    client = _OneAnswerClient(facts)
    connector.client = client  # type: ignore[assignment]

    first = connector.lookup("10.3.0.1", 720)
    again = connector.lookup("10.3.0.1", 720)

    assert first.succeeded and not first.cached and client.calls == 1  # asked Defender instead of failing
    assert again.cached and again.data[0]["organizationPrevalence"] == 2  # and the good answer replaced it


def test_thresholds_come_from_the_configuration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    connector = _connector(tmp_path, rare_device_threshold=1, novelty_hours=2, cache_ttl_s=0)
    connector.client = _OneAnswerClient(OrgStatistics(  # type: ignore[assignment]
        ipAddress="8.8.8.8", organizationPrevalence=2, orgPrevalence="2", orgFirstSeen=_at(0),
        orgLastSeen=_at(0), seenInOrg=True, lookBackHours=720))
    data = connector.lookup("8.8.8.8", 720).data[0]
    assert data["verdict"] == "common" and data["ipScope"] == "public"


@pytest.mark.parametrize(("field", "value"), [("rare_device_threshold", 0), ("novelty_hours", 0),
                                              ("novelty_hours", 721)])
def test_thresholds_out_of_range_are_configuration_errors(tmp_path, field: str, value: int) -> None:  # type: ignore[no-untyped-def]
    from connector.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=field):
        _connector(tmp_path, **{field: value})


def test_a_failed_lookup_of_a_valid_address_still_carries_its_scope(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from connector.errors import PermissionDeniedError

    class Refusing:
        def ip_stats(self, ip: str, lookback_hours: int, deadline: float, admission: object = None) -> OrgStatistics:
            raise PermissionDeniedError("403 for the test")

    connector = _connector(tmp_path)
    connector.client = Refusing()  # type: ignore[assignment]
    results = connector.get_ip_statistics({"ip": "10.3.0.1, 100.64.0.1, not-an-ip"})
    assert [r.status for r in results] == ["failed", "failed", "failed"]
    assert [r.summary.get("ip_scope") for r in results] == ["private", "shared", None]
    for result in results:
        load(IpStatisticsResult, result.to_dict())
