"""When to try again: exponential backoff with full jitter, never past the item's deadline.

Shared by the API client and the token provider, so that a Defender hiccup and an Entra ID hiccup are
ridden out the same way, and neither lets one item take longer than its time budget.
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


def backoff_s(attempt: int) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 1)."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt, 16)))


def wait_or_raise(
    wait: float, deadline: float, failure: ConnectorError, why: str, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Sleep ``wait`` seconds before the next attempt, or raise ``failure`` when that would pass the
    deadline (time.monotonic() seconds): an answer that cannot come in time is given up at once."""
    if time.monotonic() + wait >= deadline:
        log.debug("%s: waiting %.2fs would pass the item's time budget; giving up", why, wait)
        raise failure
    log.debug("%s: retrying in %.2fs", why, wait)
    sleep(wait)
