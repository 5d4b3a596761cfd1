"""The fault matrix: every network fault and service hiccup, on a single lookup and on the middle item
of a batch, against the emulator over real HTTPS with real MSAL.

Each case states the result category it must end in (None: success, after retrying), and the item's
time budget it must end within (item_budget_s + ALLOWANCE_S). A batch always answers every item, in
input order, and a fault on one item leaves the others as they would have been.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connector import ActionResult
from emulator import Emulator, Fault

from .helpers import (
    ALLOWANCE_S,
    Timeline,
    api_log,
    assert_one_result_per_item,
    config_for,
    forwarder_to,
    lookup_batch,
    seen_ips,
)

QUICK_FAIL_S = 1.2
"""Budget for cases that must give up: long enough for two or three attempts."""
ROOMY_S = 5.0
"""Budget for cases that must succeed after retrying: the retries' worst case fits in it."""
TIMEOUT_S = 0.3
"""Per-request timeout in the timeout cases; their injected delays exceed it."""
RELAXED_TIMEOUT_S = 2.0
"""Per-request timeout elsewhere: a busy machine must not turn a 5xx case into a timeout case."""
OVERSIZED = b'{"ipAddress": "10.209.67.177", "organizationPrevalence": 1, "pad": "' + b"9" * (1 << 20) + b'"}'
PORTAL_PAGE = b"<html><head><title>Sign in to your proxy</title></head><body>Access denied</body></html>"


@dataclass(frozen=True)
class Case:
    """One row of the matrix."""

    name: str
    arm: Callable[[Emulator], None]
    """Script the fault; called just before the target item (the single lookup, or the batch's middle)."""
    expect: str | None
    """The target item's result category; None: it succeeds."""
    budget_s: float = QUICK_FAIL_S
    timeout_s: float = RELAXED_TIMEOUT_S
    route: str | None = "api"
    """Where the injected fault must show in the emulator's log (None: nothing injected)."""
    sign_in_again: bool = False
    """The fault is on the sign-in path: in a batch, revoke the tokens as the fault is armed so that
    the middle item needs a fresh token (a single lookup signs in anyway)."""
    warm_single: bool = False
    """As a single lookup, run once before arming so that a token is cached in the state store."""
    after: str | None = None
    """The category of the items after the target in a batch; None: they succeed."""
    clear_after_target: bool = True
    min_elapsed_s: float = 0.0
    emulator: dict[str, Any] = field(default_factory=dict)
    check: Callable[[ActionResult, Emulator, str], None] | None = None


def chunked(body: bytes, size: int = 65536) -> bytes:
    """The body in HTTP/1.1 chunked framing, so that it arrives without a Content-Length."""
    chunks = (body[i:i + size] for i in range(0, len(body), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def inject(fault: Fault, count: int | None = 1) -> Callable[[Emulator], None]:
    return lambda emu: emu.inject_fault(fault, count=count)


def api_calls_for(emu: Emulator, ip: str) -> list[dict[str, Any]]:
    return [e for e in api_log(emu) if f"/ips/{ip}/" in e["path"]]


def retried_once(result: ActionResult, emu: Emulator, ip: str) -> None:
    calls = api_calls_for(emu, ip)
    assert [c["fault"] is not None for c in calls] == [True, False], calls


def retried_then_gave_up(result: ActionResult, emu: Emulator, ip: str) -> None:
    calls = api_calls_for(emu, ip)
    assert len(calls) >= 2 and all(c["fault"] for c in calls), calls


def not_retried(result: ActionResult, emu: Emulator, ip: str) -> None:
    assert len(api_calls_for(emu, ip)) == 1, "a final answer must not be asked again"


def refused_by_size(streamed: bool) -> Callable[[ActionResult, Emulator, str], None]:
    """Refused from the declared Content-Length, or while reading when none was declared."""
    def check(result: ActionResult, emu: Emulator, ip: str) -> None:
        assert "cap" in result.message and ("byte body" in result.message) is not streamed, result.message
        not_retried(result, emu, ip)
    return check


def retry_after(seconds: float) -> Callable[[ActionResult, Emulator, str], None]:
    def check(result: ActionResult, emu: Emulator, ip: str) -> None:
        assert result.error is not None and result.error.retry_after_s == seconds
        assert result.error.http_status == 429
        not_retried(result, emu, ip)
    return check


def rejected_twice(result: ActionResult, emu: Emulator, ip: str) -> None:
    assert result.error is not None and result.error.http_status == 401
    assert [c["status"] for c in api_calls_for(emu, ip)] == [401, 401]


def one_fresh_token(result: ActionResult, emu: Emulator, ip: str) -> None:
    assert [c["status"] for c in api_calls_for(emu, ip)] == [401, 200], "exactly one retry with a fresh token"


def never_rejected(result: ActionResult, emu: Emulator, ip: str) -> None:
    assert all(e["status"] != 401 for e in api_log(emu)), "a token the client knew to be expiring was sent"


def signed_in_after(status: int) -> Callable[[ActionResult, Emulator, str], None]:
    """The token endpoint answered ``status`` once, then a token: retried, and not hammered (MSAL
    replays a 5xx from its throttling cache until Retry-After has passed)."""
    def check(result: ActionResult, emu: Emulator, ip: str) -> None:
        statuses = [e["status"] for e in emu.request_log() if e["route"] == "token"]
        assert statuses[-2:] == [status, 200] and statuses.count(status) == 1, statuses
    return check


def revoke(emu: Emulator) -> None:
    emu.revoke_tokens()


def past_expiry(emu: Emulator) -> None:
    emu.advance_clock(emu.config.token_lifetime_s + 60)


CASES = [
    # -- the connection -----------------------------------------------------------------------
    Case("read_timeout_once", inject(Fault(delay_s=0.6)), None, ROOMY_S, TIMEOUT_S),
    Case("read_timeout_persistent", inject(Fault(delay_s=0.6), None), "network", timeout_s=TIMEOUT_S),
    Case("connection_reset_once", inject(Fault(reset=True)), None, ROOMY_S, check=retried_once),
    Case("connection_reset_persistent", inject(Fault(reset=True), None), "network", check=retried_then_gave_up),
    Case("truncated_json_once", inject(Fault(truncated=True)), None, ROOMY_S, check=retried_once),
    Case("truncated_json_persistent", inject(Fault(truncated=True), None), "network", check=retried_then_gave_up),
    # -- 5xx ------------------------------------------------------------------------------------
    *(Case(f"http_{status}_once", inject(Fault(status=status)), None, ROOMY_S, check=retried_once)
      for status in (500, 502, 503, 504)),
    *(Case(f"http_{status}_burst_of_3_with_retry_after",
           inject(Fault(status=status, headers={"Retry-After": "0.1"}), 3), None, ROOMY_S, min_elapsed_s=0.3)
      for status in (500, 502, 503, 504)),
    Case("http_503_burst_of_2", inject(Fault(status=503), 2), None, ROOMY_S),
    Case("http_503_past_the_budget", inject(Fault(status=503), None), "unavailable", check=retried_then_gave_up),
    Case("http_500_past_the_budget", inject(Fault(status=500), None), "unavailable", check=retried_then_gave_up),
    # -- 429 ------------------------------------------------------------------------------------
    Case("http_429_with_retry_after", inject(Fault(status=429, headers={"Retry-After": "1"})), None, ROOMY_S,
         min_elapsed_s=1.0, check=retried_once),
    Case("http_429_without_retry_after", inject(Fault(status=429)), "rate_limited", after="rate_limited",
         check=retry_after(10.0)),
    Case("http_429_retry_after_past_the_budget", inject(Fault(status=429, headers={"Retry-After": "30"})),
         "rate_limited", after="rate_limited", check=retry_after(30.0)),
    # -- the body -------------------------------------------------------------------------------
    Case("malformed_json", inject(Fault(malformed=True)), "unexpected_response", check=not_retried),
    Case("unexpected_content_type", inject(Fault(status=200, body=PORTAL_PAGE, content_type="text/html")),
         "unexpected_response", check=not_retried),
    Case("body_over_the_size_cap", inject(Fault(status=200, body=OVERSIZED)), "unexpected_response",
         check=refused_by_size(streamed=False)),
    Case("body_over_the_size_cap_streamed_without_length",
         inject(Fault(status=200, body=chunked(OVERSIZED), headers={"Transfer-Encoding": "chunked",
                                                                   "Content-Length": ""})),
         "unexpected_response", check=refused_by_size(streamed=True)),
    # -- sign-in ----------------------------------------------------------------------------------
    Case("token_endpoint_503_once_with_retry_after",
         inject(Fault(route="token", status=503, headers={"Retry-After": "1"})), None, 9.0, route="token",
         sign_in_again=True, check=signed_in_after(503)),
    Case("token_endpoint_429_once_with_retry_after",
         inject(Fault(route="token", status=429, headers={"Retry-After": "1"})), None, 9.0, route="token",
         sign_in_again=True, check=signed_in_after(429)),
    Case("token_endpoint_503_persistent", inject(Fault(route="token", status=503), None), "unavailable",
         route="token", sign_in_again=True, after="unavailable", clear_after_target=False),
    Case("token_endpoint_reset_once", inject(Fault(route="token", reset=True)), None, ROOMY_S, route="token",
         sign_in_again=True),
    Case("token_endpoint_reset_persistent", inject(Fault(route="token", reset=True), None), "network",
         route="token", sign_in_again=True, after="network", clear_after_target=False),
    Case("token_endpoint_too_slow", inject(Fault(route="token", delay_s=0.6), None), "network",
         timeout_s=TIMEOUT_S, route="token", sign_in_again=True, after="network", clear_after_target=False),
    Case("token_expired_by_the_clock", past_expiry, None, ROOMY_S, route=None, warm_single=True,
         check=one_fresh_token),
    Case("token_revoked", revoke, None, ROOMY_S, route=None, warm_single=True, check=one_fresh_token),
    Case("token_lifetime_under_the_expiry_margin", lambda emu: None, None, ROOMY_S, route=None, warm_single=True,
         emulator={"token_lifetime_s": 120.0}, check=never_rejected),
    Case("token_rejected_once", inject(Fault(status=401)), None, ROOMY_S, check=one_fresh_token),
    Case("token_rejected_twice", inject(Fault(status=401), 2), "authentication", check=rejected_twice),
]
# Only as single lookups: discovery runs once per connector, and MSAL's 5 s default throttle after a
# 5xx without Retry-After makes that case slow enough to run once.
SINGLE_ONLY = [
    Case("discovery_503_once", inject(Fault(route="discovery", status=503)), None, ROOMY_S, route="discovery"),
    Case("discovery_reset_once", inject(Fault(route="discovery", reset=True)), None, ROOMY_S, route="discovery"),
    Case("token_endpoint_500_once_without_retry_after", inject(Fault(route="token", status=500)), None, 14.0,
         route="token", min_elapsed_s=4.0, check=signed_in_after(500)),
]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    """Delayed answers are logged by the emulator when their delay ends: give them that long."""
    until = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


def assert_outcome(result: ActionResult, expect: str | None, label: str) -> None:
    if expect is None:
        assert result.status == "success", f"{label}: {result.error}"
        assert result.data and result.error is None
    else:
        assert result.status == "failed" and result.error is not None, f"{label}: {result}"
        assert result.error.category == expect, f"{label}: {result.error}"
        assert result.data == []


def assert_fault_fired(emu: Emulator, case: Case, target_ip: str) -> None:
    if case.route is None:
        return
    hits = lambda: [e for e in emu.request_log() if e["route"] == case.route and e["fault"]]  # noqa: E731
    assert wait_for(lambda: bool(hits())), f"the {case.route} fault never fired"
    if case.route == "api":
        assert all(f"/ips/{target_ip}/" in e["path"] for e in hits()), "the fault hit another item"


def settings_for(emu: Emulator, case: Case, **overrides: Any) -> dict[str, Any]:
    return config_for(emu, timeout_s=case.timeout_s, item_budget_s=case.budget_s, **overrides)


@pytest.mark.parametrize("case", CASES + SINGLE_ONLY, ids=lambda c: c.name)
def test_single_lookup(case: Case, make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = make_emulator(**case.emulator)
    warm_ip, ip = seen_ips(emu, 2)
    config = settings_for(emu, case)
    if case.warm_single:
        [warm] = lookup_batch(config, tmp_path, [warm_ip])[0]
        assert warm.status == "success"
    case.arm(emu)
    results, timeline = lookup_batch(config, tmp_path, [ip])
    [result] = results
    assert_one_result_per_item(results, [ip])
    assert_outcome(result, case.expect, case.name)
    elapsed = timeline.durations()[0]
    assert case.min_elapsed_s <= elapsed <= case.budget_s + ALLOWANCE_S, elapsed
    assert_fault_fired(emu, case, ip)
    if case.check is not None:
        case.check(result, emu, ip)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_middle_of_a_batch(case: Case, make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = make_emulator(**case.emulator)
    ips = seen_ips(emu, 3)
    config = settings_for(emu, case)

    def arm() -> None:
        if case.sign_in_again:
            emu.revoke_tokens()
        case.arm(emu)

    hooks = {1: arm}
    if case.clear_after_target:
        hooks[2] = emu.clear_faults
    results, timeline = lookup_batch(config, tmp_path, ips, timeline=Timeline(hooks=hooks))
    assert_one_result_per_item(results, ips)
    assert_outcome(results[0], None, "before the fault")
    assert_outcome(results[1], case.expect, case.name)
    assert_outcome(results[2], case.after, "after the fault")
    durations = timeline.durations()
    assert all(d <= case.budget_s + ALLOWANCE_S for d in durations), durations
    assert durations[1] >= case.min_elapsed_s
    assert_fault_fired(emu, case, ips[1])
    if case.check is not None:
        case.check(results[1], emu, ips[1])
    if case.after == "rate_limited":
        assert not api_calls_for(emu, ips[2]), "the shared 429 pause was not respected"


def test_connect_timeout_single(emulator: Emulator, tmp_path: Path) -> None:
    """The API host never completes the TCP handshake: network, after retrying until the budget."""
    config = config_for(emulator, api_url=emulator.unresponsive_url, timeout_s=TIMEOUT_S, item_budget_s=QUICK_FAIL_S)
    [result], timeline = lookup_batch(config, tmp_path, [seen_ips(emulator, 1)[0]])
    assert_outcome(result, "network", "connect timeout")
    assert result.error is not None and "ConnectTimeout" in result.error.message
    assert TIMEOUT_S <= timeline.durations()[0] <= QUICK_FAIL_S + ALLOWANCE_S
    assert not api_log(emulator)


def test_connect_timeout_middle_of_a_batch(emulator: Emulator, tmp_path: Path) -> None:
    """The path to the API drops SYNs while the middle item runs (a firewall hiccup)."""
    ips = seen_ips(emulator, 3)
    with forwarder_to(emulator) as path:
        config = config_for(emulator, api_url=f"https://127.0.0.1:{path.port}", timeout_s=TIMEOUT_S,
                            item_budget_s=QUICK_FAIL_S)
        timeline = Timeline(hooks={1: path.blackhole, 2: path.restore})
        results, timeline = lookup_batch(config, tmp_path, ips, timeline=timeline)
    assert_one_result_per_item(results, ips)
    assert [r.status for r in results] == ["success", "failed", "success"]
    assert results[1].error is not None and results[1].error.category == "network"
    assert "ConnectTimeout" in results[1].error.message
    durations = timeline.durations()
    assert TIMEOUT_S <= durations[1] <= QUICK_FAIL_S + ALLOWANCE_S, durations
    assert [len(api_calls_for(emulator, ip)) for ip in ips] == [1, 0, 1]
