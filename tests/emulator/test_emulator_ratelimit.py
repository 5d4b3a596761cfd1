"""Throttling per (tenant, application): sliding windows, honest Retry-After, time compression."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator.ratelimit import SlidingWindowLimiter, retry_after_header
from emulator.testing import https_session


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY = ("tenant", "app")


def test_a_window_lets_exactly_its_limit_through() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(((100, 60.0),), clock)
    decisions = [limiter.acquire(KEY) for _ in range(150)]
    assert sum(d.allowed for d in decisions) == 100
    assert all(d.allowed for d in decisions[:100])


def test_refused_calls_do_not_count_and_the_wait_is_exact() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(((3, 60.0),), clock)
    for step in (0.0, 10.0, 20.0):
        clock.now = 1000.0 + step
        assert limiter.acquire(KEY).allowed
    clock.now = 1030.0
    refused = limiter.acquire(KEY)
    assert not refused.allowed and refused.wait_s == pytest.approx(30.0)
    for _ in range(50):  # hammering while throttled does not push the reopening back
        limiter.acquire(KEY)
    clock.now = 1030.0 + refused.wait_s
    assert limiter.acquire(KEY).allowed
    assert not limiter.acquire(KEY).allowed  # the call at +10 s is still inside


def test_the_longest_full_window_decides_the_wait() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(((100, 60.0), (150, 3600.0)), clock)
    for minute in range(2):
        clock.now = 1000.0 + minute * 61
        assert all(limiter.acquire(KEY).allowed for _ in range(75))
    refused = limiter.acquire(KEY)
    assert refused.limit == (150, 3600.0)
    assert refused.wait_s == pytest.approx(1000.0 + 3600.0 - clock.now)


def test_applications_are_throttled_separately() -> None:
    limiter = SlidingWindowLimiter(((1, 60.0),), FakeClock())
    assert limiter.acquire(("t", "a")).allowed
    assert not limiter.acquire(("t", "a")).allowed
    assert limiter.acquire(("t", "b")).allowed
    assert limiter.acquire(("u", "a")).allowed


@pytest.mark.parametrize(("wait", "scale", "expected"), [
    (30.0, 1.0, "30"), (29.2, 1.0, "30"), (0.01, 1.0, "1"), (30.0, 60.0, "0.5"), (21.0, 60.0, "0.35"),
    (0.0001, 60.0, "0.001"), (3.4567, 1.0, "4"),
])
def test_retry_after_is_rounded_up_never_down(wait: float, scale: float, expected: str) -> None:
    header = retry_after_header(wait, scale)
    assert header == expected
    assert float(header) >= wait / scale


def test_retry_after_style_can_be_forced() -> None:
    assert retry_after_header(21.0, 60.0, "integer") == "1"
    assert retry_after_header(21.0, 1.0, "decimal") == "21"
    assert retry_after_header(21.5, 1.0, "decimal") == "21.5"


def test_burst_of_150_gets_100_answers_and_50_throttled_and_retry_after_is_honest(make_emulator) -> None:  # type: ignore[no-untyped-def]
    scale = 15.0  # the 60 s window lasts 4 real seconds
    emu = make_emulator(time_scale=scale)
    session = https_session(emu.ca_path)
    session.headers["Authorization"] = f"Bearer {emu.issue_token('reader')}"
    url = f"{emu.api_url}/api/ips/10.209.67.177/stats"
    session.get(url).raise_for_status()  # warm the connection (this call counts too)
    emu.reset_rate_limits()
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: session.get(url), range(150)))
    burst_s = time.monotonic() - started
    assert burst_s < 60 / scale / 2, f"burst too slow for the compressed window ({burst_s:.2f}s)"
    statuses = [a.status_code for a in answers]
    assert (statuses.count(200), statuses.count(429)) == (100, 50)
    throttled = [a for a in answers if a.status_code == 429]
    assert all(a.json()["error"]["code"] == "TooManyRequests" for a in throttled)
    assert session.get(url).status_code == 429  # retrying sooner earns another 429
    retry_after = float(session.get(url).headers["Retry-After"])
    assert 0 < retry_after <= 60 / scale
    time.sleep(retry_after)
    assert session.get(url).status_code == 200  # honouring it lets the next call through
    assert emu.counters()["http_429"] == 52


def test_retry_after_is_integer_seconds_at_real_time(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=((2, 60),))
    session = https_session(emu.ca_path)
    session.headers["Authorization"] = f"Bearer {emu.issue_token('reader')}"
    url = f"{emu.api_url}/api/ips/10.209.67.177/stats"
    assert [session.get(url).status_code for _ in range(2)] == [200, 200]
    throttled = session.get(url)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"].isdigit()
    assert 58 <= int(throttled.headers["Retry-After"]) <= 60
    emu.advance_clock(60)
    assert session.get(url).status_code == 200


def test_only_authenticated_calls_use_the_window_and_invalid_ones_do(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=((2, 60),))
    session = https_session(emu.ca_path)
    for _ in range(5):
        assert session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats").status_code == 401
    session.headers["Authorization"] = f"Bearer {emu.issue_token('reader')}"
    assert session.get(f"{emu.api_url}/api/ips/256.1.1.1/stats").status_code == 400  # reached the service
    assert session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats").status_code == 200
    assert session.get(f"{emu.api_url}/api/ips/256.1.1.1/stats").status_code == 429  # throttled before input


def test_each_application_has_its_own_window_over_http(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=((1, 60),))
    session = https_session(emu.ca_path)
    url = f"{emu.api_url}/api/ips/1.2.3.4/stats"
    reader = {"Authorization": f"Bearer {emu.issue_token('reader')}"}
    reader2 = {"Authorization": f"Bearer {emu.issue_token('reader2')}"}
    statuses = [session.get(url, headers=h).status_code for h in (reader, reader, reader2, reader2)]
    assert statuses == [200, 429, 200, 429]
    assert math.isclose(emu.counters()["http_429"], 2)
