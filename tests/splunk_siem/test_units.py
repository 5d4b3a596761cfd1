"""The command's parts that need no Splunk: enrichment and its memo, the search's wait budget, and the
reading of UCC's storage layout. Imported from the source tree's package/bin, as the add-on ships it."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from connector.errors import RateLimitedError, UnavailableError
from connector.platforms.splunk_siem import globalconfig
from connector.results import ActionResult

sys.path.insert(0, str(globalconfig.HERE / "package" / "bin"))

from fake_splunkd import END_MARK, split_password
from ta_mde_ipstats import splunkd
from ta_mde_ipstats.budget import SearchWaitBudget
from ta_mde_ipstats.enrich import FIELDS, Enricher


def _success(ip: str, cached: bool = False) -> ActionResult:
    data = {"ipAddress": ip, "organizationPrevalence": 3, "orgPrevalence": "3", "orgFirstSeen": "2025-01-01T00:00:00Z",
            "orgLastSeen": "2025-01-02T00:00:00Z", "seenInOrg": True, "lookBackHours": 720, "verdict": "rare",
            "ipScope": "public", "newInWindow": False}
    return ActionResult(action="get_ip_statistics", status="success", message="ok",
                        parameters={"ip": ip, "lookback_hours": 720}, data=[data],
                        summary={"ip_scope": "public"}, cached=cached)


class Recorder:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, ip: str) -> ActionResult:
        self.asked.append(ip)
        return _success(ip)


# -- enrichment ----------------------------------------------------------------------------------------

def test_each_address_is_looked_up_once_across_chunks_and_spellings() -> None:
    lookup = Recorder()
    enricher = Enricher("ip", lookup)
    enricher.enrich([{"ip": "192.0.2.1"}, {"ip": "2001:DB8::1"}])
    enricher.enrich([{"ip": " 192.0.2.1 "}, {"ip": "2001:db8:0::1"}, {"ip": "::ffff:192.0.2.1"}])
    assert lookup.asked == ["192.0.2.1", "2001:db8::1"]


def test_events_keep_their_order_and_fields_and_gain_every_mde_field() -> None:
    events = [{"seq": str(i), "ip": "192.0.2.9" if i % 2 else "bogus"} for i in range(6)]
    out = Enricher("ip", Recorder()).enrich(events)
    assert [e["seq"] for e in out] == [str(i) for i in range(6)]
    assert all({f"mde_{f}" for f in FIELDS} <= set(e) for e in out)
    assert [e["mde_status"] for e in out] == ["invalid_input", "success"] * 3
    assert out[1]["mde_seen_in_org"] == "true" and out[1]["mde_prevalence"] == "3"
    assert out[1]["mde_verdict"] == "rare" and out[1]["mde_new_in_window"] == "false"


@pytest.mark.parametrize("value", [None, "", "   ", "example.com", "10.0.0.0/8", ["192.0.2.1", "192.0.2.2"], []])
def test_a_value_that_is_not_one_address_is_invalid_input_and_never_looked_up(value: Any) -> None:
    lookup = Recorder()
    event = {} if value is None else {"ip": value}
    (out,) = Enricher("ip", lookup).enrich([event])
    assert out["mde_status"] == "invalid_input" and out["mde_error"]
    assert lookup.asked == []


def test_a_one_value_multivalue_field_is_that_value() -> None:
    (out,) = Enricher("ip", Recorder()).enrich([{"ip": ["192.0.2.4"]}])
    assert out["mde_status"] == "success"


def test_a_cached_answer_says_cached_and_a_failure_says_its_category_and_when_to_retry() -> None:
    answers = {"192.0.2.1": _success("192.0.2.1", cached=True),
               "192.0.2.2": ActionResult.failure("get_ip_statistics", {"ip": "192.0.2.2"},
                                                 RateLimitedError("slow down", retry_after_s=42.5)),
               "192.0.2.3": ActionResult.failure("get_ip_statistics", {"ip": "192.0.2.3"},
                                                 UnavailableError("down"))}
    out = Enricher("ip", answers.__getitem__, prefix="x_").enrich([{"ip": ip} for ip in answers])
    assert [e["x_status"] for e in out] == ["cached", "rate_limited", "unavailable"]
    assert out[1]["x_retry_after_s"] == "42.5" and out[1]["x_error"] == "slow down"
    assert out[1]["x_prevalence"] == ""


# -- the search's wait budget -----------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowGate:
    """Waits (on the fake clock) as long as the deadline allows, up to `wait_s`, else refuses."""

    def __init__(self, clock: FakeClock, wait_s: float) -> None:
        self.clock, self.wait_s = clock, wait_s
        self.deadlines: list[float] = []
        self.pauses: list[float] = []

    def acquire(self, deadline: float, lane: str = "automation") -> float:
        self.deadlines.append(deadline)
        if self.clock.now + self.wait_s > deadline:
            raise RateLimitedError("no slot", code="RateLimitBudget", retry_after_s=self.wait_s)
        self.clock.now += self.wait_s
        return self.wait_s

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def test_waits_add_up_to_max_wait_s_for_the_whole_search_not_per_address() -> None:
    clock = FakeClock()
    gate = SlowGate(clock, wait_s=4.0)
    budget = SearchWaitBudget(gate, 10.0, clock=clock)
    budget.acquire(deadline=clock.now + 120)
    budget.acquire(deadline=clock.now + 120)
    assert budget.left_s == pytest.approx(2.0)
    with pytest.raises(RateLimitedError, match="max_wait_s") as raised:
        budget.acquire(deadline=clock.now + 120)  # 4 s more would pass the search's budget
    assert gate.deadlines[-1] == pytest.approx(clock.now + 2.0)
    assert raised.value.retry_after_s == 4.0


def test_a_spent_budget_still_admits_a_call_whose_slot_is_free_now() -> None:
    clock = FakeClock()
    budget = SearchWaitBudget(SlowGate(clock, wait_s=0.0), 0.0, clock=clock)
    budget.acquire(deadline=clock.now + 120)


def test_a_429_pause_longer_than_what_is_left_fails_at_once_after_telling_every_search() -> None:
    clock = FakeClock()
    gate = SlowGate(clock, wait_s=0.0)
    budget = SearchWaitBudget(gate, 5.0, clock=clock)
    budget.pause(3.0)
    assert budget.left_s == pytest.approx(2.0)
    with pytest.raises(RateLimitedError) as raised:
        budget.pause(30.0)
    assert raised.value.retry_after_s == 30.0
    assert gate.pauses == [3.0, 30.0]  # the shared gate heard both


# -- UCC's storage layout ------------------------------------------------------------------------------

def test_a_long_password_split_by_solnlib_is_joined_back_in_order() -> None:
    clear = json.dumps({"private_key": "K" * 700})
    realm = splunkd.realm(splunkd.ACCOUNT_CONF)
    entries = [{"realm": realm, "username": u, "clear_password": p} for u, p in split_password("acct", clear)]
    entries.reverse()
    entries.append({"realm": "another#realm", "username": "acct", "clear_password": "not this"})
    assert splunkd.clear_passwords(entries, realm) == {"acct": clear}
    assert entries[0]["clear_password"] == END_MARK


def test_encrypted_fields_come_back_from_their_json_and_a_missing_one_is_a_configuration_error() -> None:
    stanza = {"tenant_id": "t", "client_secret": "******", "disabled": "0", "eai:appName": "x"}
    merged = splunkd.merge_secrets(stanza, json.dumps({"client_secret": "s3"}), "Account a")
    assert merged == {"tenant_id": "t", "client_secret": "s3"}
    with pytest.raises(Exception, match="client_secret"):
        splunkd.merge_secrets(stanza, None, "Account a")


def test_the_proxy_tab_becomes_one_url_with_its_credentials_escaped() -> None:
    url = splunkd.proxy_url({"proxy_enabled": "1", "proxy_type": "http", "proxy_url": "proxy.example",
                             "proxy_port": "3128", "proxy_username": "me", "proxy_password": "p@ss:/"})
    assert url == "http://me:p%40ss%3A%2F@proxy.example:3128"
    assert splunkd.proxy_url({"proxy_enabled": "0", "proxy_url": "proxy.example"}) is None


def test_an_account_is_chosen_by_name_or_because_it_is_the_only_one() -> None:
    assert splunkd.choose_account({"only": {}}, None) == "only"
    assert splunkd.choose_account({"a": {}, "b": {}}, "b") == "b"
    with pytest.raises(Exception, match="account=NAME"):
        splunkd.choose_account({"a": {}, "b": {}}, None)
    with pytest.raises(Exception, match="No account named c"):
        splunkd.choose_account({"a": {}}, "c")
