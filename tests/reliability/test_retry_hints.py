"""A Retry-After that asks for no wait (0, negative, a date already past) or cannot be read is no hint:
the client backs off as it would without one, never sooner than the floor, and one item makes at most
MAX_ATTEMPTS_PER_ITEM calls however much of its budget is left.

Against the emulator over real HTTPS; the tests that count many retries hand the client a recording
sleep (the waits are asserted, not sat through) and the recording gate.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connector import run
from connector.auth import TokenProvider
from connector.client import DEFAULT_RETRY_AFTER_S, MdeClient, retry_after_seconds
from connector.errors import RateLimitedError, UnavailableError
from connector.ratelimit import UnlimitedGate
from connector.retry import BACKOFF_CAP_S, MAX_ATTEMPTS_PER_ITEM, RETRY_FLOOR_S
from connector.settings import Settings
from connector.state import MemoryStateStore
from connector.transport import build_session
from emulator import Emulator
from emulator.faults import Fault

from .helpers import DOC_IP, api_log, config_for

PAST_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
NO_HINTS = ["0", "-5", "0.0", PAST_DATE, "soon", "nan", "inf", "Wed, 99 Foo 2015 07:28:00 GMT"]


@pytest.mark.parametrize("value", NO_HINTS)
def test_a_hint_asking_for_no_wait_or_unreadable_is_no_hint(value: str) -> None:
    assert retry_after_seconds(value) is None


@pytest.mark.parametrize(("value", "seconds"), [("1", 1.0), ("0.25", 0.25), ("120", 120.0), ("86400", 3600.0)])
def test_a_positive_hint_is_seconds_capped_at_an_hour(value: str, seconds: float) -> None:
    assert retry_after_seconds(value) == seconds


def test_a_future_http_date_is_the_seconds_until_it() -> None:
    from email.utils import formatdate

    hint = retry_after_seconds(formatdate(time.time() + 30, usegmt=True))
    assert hint is not None and 28 <= hint <= 31


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(emulator: Emulator, sleeps: Sleeps, gate: UnlimitedGate) -> MdeClient:
    settings = Settings.load(config_for(emulator, item_budget_s=600))
    session = build_session(settings)
    return MdeClient(settings, session, TokenProvider(settings, session, MemoryStateStore()), gate, sleep=sleeps)


@pytest.mark.parametrize("value", ["0", "-5", PAST_DATE, "soon"])
def test_a_5xx_with_a_no_wait_hint_backs_off_as_usual_and_stops_at_the_attempt_cap(emulator: Emulator,
                                                                                 value: str) -> None:
    emulator.inject_fault(Fault(status=503, headers={"Retry-After": value}), count=None)
    sleeps, gate = Sleeps(), UnlimitedGate()
    with pytest.raises(UnavailableError):
        client_for(emulator, sleeps, gate).ip_stats(DOC_IP, 24, time.monotonic() + 600)
    assert len(api_log(emulator)) == MAX_ATTEMPTS_PER_ITEM, "the budget was 600 s: the count must stop it"
    assert len(sleeps) == MAX_ATTEMPTS_PER_ITEM - 1
    assert all(RETRY_FLOOR_S <= wait <= BACKOFF_CAP_S for wait in sleeps), sleeps


@pytest.mark.parametrize("value", ["0", "-5", PAST_DATE, "soon"])
def test_a_429_with_a_no_wait_hint_waits_and_pauses_as_without_one(emulator: Emulator, value: str) -> None:
    emulator.inject_fault(Fault(status=429, headers={"Retry-After": value}), count=None)
    sleeps, gate = Sleeps(), UnlimitedGate()
    with pytest.raises(RateLimitedError) as refused:
        client_for(emulator, sleeps, gate).ip_stats(DOC_IP, 24, time.monotonic() + 600)
    assert refused.value.retry_after_s == DEFAULT_RETRY_AFTER_S
    assert len(api_log(emulator)) == MAX_ATTEMPTS_PER_ITEM
    assert sleeps == [DEFAULT_RETRY_AFTER_S] * (MAX_ATTEMPTS_PER_ITEM - 1)
    assert gate.pauses == [DEFAULT_RETRY_AFTER_S] * MAX_ATTEMPTS_PER_ITEM


def test_a_tiny_positive_hint_is_raised_to_the_floor(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(status=503, headers={"Retry-After": "0.001"}), count=2)
    sleeps, gate = Sleeps(), UnlimitedGate()
    client_for(emulator, sleeps, gate).ip_stats(DOC_IP, 24, time.monotonic() + 600)
    assert sleeps == [RETRY_FLOOR_S, RETRY_FLOOR_S]


def test_retry_after_zero_on_every_429_costs_one_call_not_the_shared_budget(emulator: Emulator,
                                                                            tmp_path: Path) -> None:
    """The issue's reproduction, end to end with the shared gate: a lookup with a 10 s budget once made
    100 calls in 0.4 s on Retry-After: 0 and filled the minute's budget for everyone."""
    emulator.inject_fault(Fault(status=429, headers={"Retry-After": "0"}), count=None)
    [result] = run("get_ip_statistics", {"ip": DOC_IP, "lookback_hours": 24},
                   config_for(emulator, item_budget_s=10), state_dir=tmp_path / "state")
    assert result.error is not None and result.error.category == "rate_limited", result
    assert result.error.retry_after_s == DEFAULT_RETRY_AFTER_S
    assert len(api_log(emulator)) == 1
