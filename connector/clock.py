"""The wall clock shared state is stamped with, and what a stamp from the future means.

Processes that share a store can only agree on the wall clock (the host's for SQLite, the server's
for Redis): monotonic clocks are per boot and per host. The wall clock can step back, though (NTP
correcting a drifted clock, a VM resumed from a snapshot, an operator). Everything stamped before the
step then lies in the future: a rate-limit log whose calls seem not to have happened yet, a 429 pause
or a lock lease that seems to end an hour from now, an answer cached "later" than now. Left alone,
each would cost about the size of the step.

The rule: a stamp further ahead of now than it could honestly be (a call's stamp: not at all; a
pause: its own length; a lease: its length) by more than CLOCK_STEP_TOLERANCE_S means the clock
stepped back since it was written, and it counts as written now. A step back therefore costs at most
what the thing costs anyway (one window, one pause, one lease), never the size of the step.

Stores, gates and the result cache take a ``clock`` (a WallClock, time.time by default): the seam
tests step the clock through (SteppedClock).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

WallClock = Callable[[], float]
"""Seconds since the epoch, as time.time() answers them."""

CLOCK_STEP_TOLERANCE_S = 1.0
"""How far ahead of now a stamp may lie before it is taken for a clock step (ordinary clock
adjustments slew by milliseconds, and stamps are taken on one clock per store)."""
CLOCK_STEP_TOLERANCE_MS = round(CLOCK_STEP_TOLERANCE_S * 1000)


def stepped_back(stamp_s: float, now_s: float, ahead_s: float = 0.0) -> bool:
    """Whether a stamp lies ahead of now by more than it honestly could (ahead_s, e.g. a lease's own
    length) and the tolerance: the clock stepped back since it was written."""
    return stamp_s - now_s > ahead_s + CLOCK_STEP_TOLERANCE_S


class SteppedClock:
    """time.time() plus an offset that can be stepped back or forward: what tests hand the stores,
    gates and result cache to move their wall clock (a worker process builds its own from a spec)."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def step(self, seconds: float) -> None:
        self.offset_s += seconds


@functools.cache
def boot_id() -> str | None:
    """This boot of the host (Linux), within which CLOCK_MONOTONIC (time.monotonic) is one clock shared
    by every process and PIDs mean one thing; None where it cannot be read."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None
