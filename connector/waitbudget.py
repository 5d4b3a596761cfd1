"""One batch's patience with the rate limit: a total wait, however many IPs the batch looks up.

The core bounds one lookup (item_budget_s) and shares one rate gate between every worker of an
application. A batch whose caller cannot wait long (a Splunk search's max_wait_s; a Sentinel playbook's
HTTP call, which Logic Apps gives up after 120 s) must not add those bounds up: this gate wraps the shared
one and hands each wait only what is left of the batch's budget. Once it is spent, an IP still gets a
call when a slot is free at once; otherwise the core fails it at once as rate_limited, with
retry_after_s, and the batch finishes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connector.errors import RateLimitedError
from connector.lanes import DEFAULT_LANE, Lane
from connector.ratelimit import RateGate


class WaitBudget:
    """A RateGate that limits the total time spent waiting on ``inner`` to ``wait_s`` seconds.

    ``budget`` names the budget in messages ("this search's max_wait_s"); ``advice`` says what to change
    besides waiting."""

    def __init__(self, inner: RateGate, wait_s: float, clock: Callable[[], float] = time.monotonic, *,
                 budget: str = "this call's wait budget", advice: str = "or look up fewer addresses at once") -> None:
        self._inner = inner
        self._left = max(0.0, wait_s)
        self._clock = clock
        self._guard = threading.Lock()
        self._budget = budget
        self._advice = advice

    @property
    def left_s(self) -> float:
        return self._left

    def _spend(self, seconds: float) -> None:
        with self._guard:
            self._left = max(0.0, self._left - max(0.0, seconds))

    def acquire(self, deadline: float, lane: Lane = DEFAULT_LANE) -> float:
        started = self._clock()
        left = self._left
        try:
            return self._inner.acquire(min(deadline, started + left), lane)
        except RateLimitedError as exc:
            if exc.retry_after_s is None or exc.code != "RateLimitBudget":
                raise
            raise RateLimitedError(
                f"Defender's rate limit for this application has no free call for {exc.retry_after_s:g} s, more "
                f"than is left of {self._budget} ({left:.1f} s). Retry after {exc.retry_after_s:g} s, "
                f"{self._advice}.", code=exc.code, retry_after_s=exc.retry_after_s) from None
        finally:
            self._spend(self._clock() - started)

    def pause(self, seconds: float) -> None:
        """A 429: everyone pauses; this batch sleeps it only if its budget still covers the pause."""
        self._inner.pause(seconds)
        if seconds > self._left:
            raise RateLimitedError(
                f"Defender answered 429 Too Many Requests and asks for {seconds:g} s, more than is left of "
                f"{self._budget} ({self._left:.1f} s). Retry after {seconds:g} s.",
                http_status=429, code="TooManyRequests", retry_after_s=seconds)
        self._spend(seconds)  # the client sleeps it before its next try

    def close(self) -> None:
        """The shared gate outlives the batch (the core reuses it within the process)."""
