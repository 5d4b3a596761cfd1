"""The emulator's sense of time: a calendar that can be pinned, and a compressible timeline.

Two notions are kept apart on purpose:

- the **calendar** (`now()`): "today" for the synthetic organisation. Pinned to `EmulatorConfig.now`
  (frozen there) or the real UTC time. Statistics are computed against it, so a pinned calendar keeps
  a test's expected figures still.
- the **timeline** (`elapsed()`, `epoch()`): what rate-limit windows and token lifetimes run on.
  It always moves, `time_scale` times faster than real time, so throttling and expiry can be
  exercised in seconds even with a pinned calendar.

`advance(s)` jumps both forward by `s` emulated seconds (expire tokens, slide windows, age the data).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class EmulatedClock:
    def __init__(self, pinned: datetime | None, time_scale: float) -> None:
        self._pinned = pinned
        self.time_scale = time_scale
        self._mono0 = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    @property
    def pinned(self) -> bool:
        return self._pinned is not None

    def now(self) -> datetime:
        """The emulated calendar time (aware, UTC)."""
        base = self._pinned if self._pinned is not None else datetime.now(UTC)
        return base + timedelta(seconds=self._advanced)

    def elapsed(self) -> float:
        """Emulated seconds since start: drives the rate-limit windows."""
        return (time.monotonic() - self._mono0) * self.time_scale + self._advanced

    def epoch(self) -> float:
        """Token time: real Unix time plus advances (in real seconds). Tokens' iat/exp use it."""
        return time.time() + self._advanced / self.time_scale

    def to_real(self, emulated_seconds: float) -> float:
        return emulated_seconds / self.time_scale

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        with self._lock:
            self._advanced += seconds
