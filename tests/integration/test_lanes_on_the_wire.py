"""Lanes through the connector's public entry point, against the emulator: a person's lookup gets the
reserve while playbooks have spent their share, answers fast when there is none left, every lane is
answered from the result cache, and every result names its lane."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connector import run
from tests.integration.helpers import api_requests


def lanes_config(emulator: Any, **overrides: Any) -> dict[str, Any]:
    # Two calls a real minute; the reserve (50%) is one of them: automation has the other.
    return {**emulator.connector_config(app="reader", auth="secret"), "rate_limit_per_minute": 2,
            "interactive_reserve_percent": 50, "item_budget_s": 2, **overrides}


def lookup(config: dict[str, Any], state: Path, ip: str, lane: str | None = None) -> Any:
    params: dict[str, Any] = {"ip": ip} if lane is None else {"ip": ip, "lane": lane}
    (result,) = run("get_ip_statistics", params, config, state_dir=state)
    return result


def test_a_person_gets_the_reserve_after_playbooks_spent_their_share_then_a_fast_retry_hint(
        emulator: Any, tmp_path: Path) -> None:
    config = lanes_config(emulator)
    state = tmp_path / "state"
    first, second, third, fourth = emulator.org.sample_ips(4, seen=True)
    playbook = lookup(config, state, first)  # automation, the default
    assert playbook.succeeded and playbook.summary["lane"] == "automation"
    refused = lookup(config, state, second, "automation")
    assert refused.error is not None and refused.error.category == "rate_limited"
    assert refused.summary["lane"] == "automation"

    began = time.monotonic()
    person = lookup(config, state, third, "interactive")
    assert person.succeeded and person.summary["lane"] == "interactive"
    assert "lane_wait_s" not in person.summary  # the reserve was free: no wait
    again = lookup(config, state, fourth, "interactive")
    took = time.monotonic() - began
    assert again.error is not None and again.error.category == "rate_limited"
    assert again.error.retry_after_s is not None and again.error.retry_after_s > 30  # the minute must pass
    assert "interactive_budget_s" in again.message and "Retry after" in again.message
    assert took < 5, f"a person waited {took:.1f} s for the answer"
    assert len(api_requests(emulator)) == 2  # refused lookups never reached Defender


def test_a_cached_answer_is_given_in_every_lane_even_with_the_limit_spent(emulator: Any, tmp_path: Path) -> None:
    config = lanes_config(emulator)
    state = tmp_path / "state"
    ip = emulator.org.sample_ips(1, seen=True)[0]
    assert lookup(config, state, ip, "interactive").succeeded
    assert lookup(config, state, emulator.org.sample_ips(2, seen=True)[1], "automation").succeeded  # limit spent
    for lane in ("interactive", "automation", "bulk"):
        result = lookup(config, state, ip, lane)
        assert result.succeeded and result.cached and result.summary["lane"] == lane
    assert len(api_requests(emulator)) == 2


def test_a_lookup_that_waited_for_a_slot_says_how_long(emulator: Any, tmp_path: Path) -> None:
    # A minute of 1.2 s (time x50, and the real-time margin floor): the second call waits for it.
    config = lanes_config(emulator, rate_limit_per_minute=1, rate_limit_time_scale=50, item_budget_s=10)
    state = tmp_path / "state"
    first, second = emulator.org.sample_ips(2, seen=True)
    assert "lane_wait_s" not in lookup(config, state, first).summary
    waited = lookup(config, state, second, "bulk")
    assert waited.succeeded and waited.summary["lane"] == "bulk"
    assert 0.3 < waited.summary["lane_wait_s"] < 2.0


def test_a_bad_lane_fails_every_item_clearly_without_a_request(emulator: Any, tmp_path: Path) -> None:
    config = lanes_config(emulator)
    results = run("get_ip_statistics", {"ip": "10.0.0.1, 10.0.0.2", "lane": "urgent"}, config,
                  state_dir=tmp_path / "state")
    assert [r.error.category if r.error else None for r in results] == ["invalid_input"] * 2
    assert "lane 'urgent' is not valid" in results[0].message and "interactive" in results[0].message
    assert api_requests(emulator) == []
