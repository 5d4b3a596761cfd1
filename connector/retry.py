"""When to try again: exponential backoff with full jitter, never past the item's deadline, never
sooner than a floor, and never more than a number of attempts per item.

Shared by the API client and the token provider, so that a Defender hiccup and an Entra ID hiccup are
ridden out the same way, and neither lets one item take longer than its time budget. The floor and the
count matter when the service answers fast: a ``Retry-After: 0`` (or a jitter draw near zero) would
otherwise re-send at once, and a service failing in milliseconds would be asked again and again for as
long as the budget lasts, each call spending the rate limit every other lookup shares.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from connector.errors import ConnectorError

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0
RETRY_FLOOR_S = 0.1
"""The shortest wait before a retry, whatever the hint or the jitter said."""
MAX_ATTEMPTS_PER_ITEM = 6
"""The most calls one item (one IP) makes to the API, the first included, however much of its time
budget is left. (Sign-in retries need no count: MSAL answers a retry from its throttling memory, without
asking Entra ID, until the Retry-After it was given, or 5 s, has passed.)"""


def call_reserve_s(timeout_s: float, budget_s: float) -> float:
    """How long before its deadline a lookup must stop waiting on others (another worker fetching the
    same IP, a rate-limit slot) so that its own call still has time to be answered: the read timeout,
    but never more than half the budget. A call sent with less is counted by Defender and its answer
    likely lost to the deadline."""
    return min(timeout_s, budget_s / 2)


def backoff_s(attempt: int) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 1)."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 16)))


def wait_or_raise(
    wait: float, deadline: float, failure: ConnectorError, why: str, sleep: Callable[[float], None] = time.sleep,
    *, attempt: int | None = None, max_attempts: int = MAX_ATTEMPTS_PER_ITEM,
) -> None:
    """Sleep ``wait`` seconds (at least RETRY_FLOOR_S) before the next attempt, or raise ``failure`` when
    the wait would pass the deadline (time.monotonic() seconds), or when ``attempt``, if counted, was
    the item's last: an answer that cannot come in time is given up at once."""
    if attempt is not None and attempt >= max_attempts:
        log.debug("%s: %d attempts made, the most one item may; giving up", why, attempt)
        raise failure
    wait = max(wait, RETRY_FLOOR_S)
    if time.monotonic() + wait >= deadline:
        log.debug("%s: waiting %.2fs would pass the item's time budget; giving up", why, wait)
        raise failure
    log.debug("%s: retrying in %.2fs", why, wait)
    sleep(wait)
