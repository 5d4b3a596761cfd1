"""One search's patience with the rate limit: max_wait_s in total, however many IPs it looks up.

The core's WaitBudget (connector/waitbudget.py) does the accounting; a search names its budget
max_wait_s, and a search of thousands of events is told how to need less of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from connector.ratelimit import RateGate
from connector.waitbudget import WaitBudget


class SearchWaitBudget(WaitBudget):
    """A RateGate that limits the total time a search spends waiting on ``inner`` to ``wait_s`` seconds."""

    def __init__(self, inner: RateGate, wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner, wait_s, clock, budget="this search's max_wait_s",
                         advice="narrow the search to fewer distinct addresses, or raise max_wait_s")
