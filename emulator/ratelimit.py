"""Defender's per-application throttling: sliding windows per (tenant, application).

Each window is (calls, seconds) in emulated time, so `time_scale` shrinks the windows and the
Retry-After together. Only calls that are let through are recorded: a call answered 429 does not
count against the window (retrying early earns another 429, but never pushes the reopening later).

Retry-After is honest: the exact time until the oldest call that keeps a full window full leaves
it, converted to real seconds and rounded *up*, so that sleeping for it always lets the next call in.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    wait_s: float = 0.0              # emulated seconds until a call would be allowed
    limit: tuple[int, float] | None = None  # the window that refused


class SlidingWindowLimiter:
    def __init__(self, limits: tuple[tuple[int, float], ...], clock: Callable[[], float]) -> None:
        self.limits = tuple((int(calls), float(window)) for calls, window in limits)
        self._clock = clock
        self._longest = max((w for _, w in self.limits), default=0.0)
        self._calls: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: tuple[str, str]) -> Decision:
        if not self.limits:
            return Decision(True)
        with self._lock:
            now = self._clock()
            calls = self._calls.setdefault(key, [])
            # Forget calls older than the longest window (a call at exactly now - window has left it).
            drop = bisect.bisect_right(calls, now - self._longest)
            if drop:
                del calls[:drop]
            wait, refusing = 0.0, None
            for limit, window in self.limits:
                first = bisect.bisect_right(calls, now - window)
                inside = len(calls) - first
                if inside >= limit:
                    # The call that must leave for one slot to open: the (inside - limit + 1)-th oldest.
                    leaves_at = calls[first + inside - limit] + window
                    if leaves_at - now > wait:
                        wait, refusing = leaves_at - now, (limit, window)
            if refusing is not None:
                return Decision(False, wait, refusing)
            calls.append(now)
            return Decision(True)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


def retry_after_header(wait_emulated_s: float, time_scale: float, style: str = "auto") -> str:
    """Seconds to wait, in real time, rounded up: an integer (as Defender sends) or, under time
    compression, a decimal with millisecond resolution (so that short waits stay short)."""
    real = wait_emulated_s / time_scale
    decimal = style == "decimal" or (style == "auto" and time_scale > 1)
    if decimal:
        millis = max(1, math.ceil(real * 1000))
        return f"{millis / 1000:.3f}".rstrip("0").rstrip(".")
    return str(max(1, math.ceil(real)))
