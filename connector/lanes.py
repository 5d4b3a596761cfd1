"""Lanes: who may use how much of the rate limit every lookup of an application shares.

Defender's limit is shared by everyone who calls as the same application: playbooks firing on every
alert, a SIEM search over thousands of addresses, and an analyst waiting in front of a screen. Each
lookup runs in one of three lanes, all counted in the same sliding-window logs:

- ``interactive``: a person is waiting. May use the whole limit, including a reserve that no other
  lane may touch (``interactive_reserve_percent`` of each window).
- ``automation`` (the default): playbooks. May use everything but the reserve.
- ``bulk``: SIEM searches, backfills, sweeps. Capped at ``bulk_max_percent`` of each window, so that
  playbooks keep flowing while a large search runs.

The rule, per window of limit L: all lanes together hold at most L calls; automation and bulk together
at most L - reserve; bulk alone at most its cap. Interactive calls count against L only, so a person's
clicks never shrink the playbooks' share, and automation and bulk can never leave fewer than the reserve
free for a person. The lane codes are ordered so that "the calls of lane k and above" is each of these
three counts (k = 0, 1, 2), which is how every log answers them.

Rounding, for limits so small that a percentage is a fraction of a call: the reserve rounds *up* (it is
a promise to a person: 10% of 5 calls a minute reserves 1), but always leaves automation at least one
call (a limit of 1 has no reserve); the bulk cap rounds *down* (it is a promise to the others: 50% of 5
is 2), but is never below one call, or bulk could never run. Reserve 0 and bulk 100 switch lanes off:
every lane is then admitted exactly as before lanes existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

Lane = Literal["interactive", "automation", "bulk"]
LANES: tuple[Lane, ...] = ("interactive", "automation", "bulk")
DEFAULT_LANE: Lane = "automation"
INTERACTIVE, AUTOMATION, BULK = 0, 1, 2
"""Lane codes, as the logs store them: a count "from lane k" counts the calls of lane k and above."""


def lane_code(lane: Lane) -> int:
    return LANES.index(lane)


class Shares(NamedTuple):
    """Of one window's limit: what every lane together, automation and bulk together, and bulk alone
    may hold. Each is at most the one before."""

    whole: int
    shared: int
    bulk: int

    @classmethod
    def of(cls, limit: int, reserve_percent: int, bulk_percent: int) -> Shares:
        reserve = min(-(-limit * reserve_percent // 100), limit - 1) if reserve_percent > 0 and limit > 1 else 0
        shared = limit - reserve
        bulk = min(shared, max(1, limit * bulk_percent // 100))
        return cls(limit, shared, bulk)

    def caps(self, lane: int) -> list[tuple[int, int]]:
        """(from lane, cap) pairs a call in ``lane`` must fit, leaving out a cap the one before implies
        (with lanes off, only the whole limit: one look-up per window, as before lanes)."""
        caps = [(INTERACTIVE, self.whole)]
        if lane >= AUTOMATION and self.shared < self.whole:
            caps.append((AUTOMATION, self.shared))
        if lane >= BULK and self.bulk < self.shared:
            caps.append((BULK, self.bulk))
        return caps


@dataclass
class Admission:
    """One lookup's place in the shared rate limit: its lane, its time budget (seconds), and the time it
    has spent waiting for a slot so far (the result reports it)."""

    lane: Lane = DEFAULT_LANE
    budget_s: float = 120.0
    waited_s: float = 0.0
