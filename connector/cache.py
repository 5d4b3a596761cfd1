"""The result cache: one answer per (tenant, IP, look-back) for a while, and one fetch at a time.

An alert storm asks about the same few IPs over and over; Defender's statistics change slowly, and
every call spends a share of a small budget (100 a minute). A fresh answer is therefore served from
the shared store, not-seen answers included, and concurrent lookups of the same IP from different
processes make a single call: the first takes a lock in the store and fetches, the others wait on
that lock and then find its answer in the cache.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple

from connector.clock import WallClock, stepped_back
from connector.inputs import canonical_ip
from connector.state import StateStore

_FORMAT = 1


class CachedAnswer(NamedTuple):
    data: dict[str, Any]
    """The OrgStatistics dict (Defender's facts) exactly as it was stored."""
    age_s: float


class ResultCache:
    """Answers keyed by (tenant, identity, IP, look-back hours) in a StateStore, for ttl_s seconds (0
    disables). The identity is whoever asked Defender (the application, or the signed-in person): an
    answer is only served to the identity that was allowed to get it. An answer stored "later" than now
    (the wall clock stepped back since) has no age anyone can tell: a miss, not fresh for the step."""

    def __init__(self, store: StateStore, ttl_s: float, tenant_id: str, identity: str = "app", *,
                 clock: WallClock = time.time) -> None:
        self._store = store
        self.ttl_s = ttl_s
        self._tenant = tenant_id.strip().lower()
        self._identity = identity
        self._clock = clock

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def _key(self, kind: str, ip: str, lookback_hours: int) -> str:
        return f"{kind}:{self._tenant}:{self._identity}:{canonical_ip(ip)}:{int(lookback_hours)}"

    def get(self, ip: str, lookback_hours: int) -> CachedAnswer | None:
        if not self.enabled:
            return None
        raw = self._store.get(self._key("result", ip, lookback_hours))
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            if entry.get("format") != _FORMAT or not isinstance(entry.get("data"), dict):
                return None
            stored_at, now = float(entry["stored_at"]), self._clock()
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # unreadable (another version wrote it): treat as a miss, the next put replaces it
        age = max(0.0, now - stored_at)
        if age >= self.ttl_s or stepped_back(stored_at, now):
            return None
        return CachedAnswer(data=entry["data"], age_s=round(age, 3))

    def put(self, ip: str, lookback_hours: int, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        entry = {"format": _FORMAT, "stored_at": self._clock(), "data": data}
        self._store.set(self._key("result", ip, lookback_hours), json.dumps(entry).encode(), ttl_s=self.ttl_s)

    def single_flight(self, ip: str, lookback_hours: int, timeout_s: float) -> AbstractContextManager[None]:
        """Hold the fetch of (ip, lookback_hours) against every other process sharing the store.

        A lookup that cannot get the lock within timeout_s goes ahead without it (the holder may be
        stuck, or slower than this lookup's budget allows): a rare duplicate call is better than a
        lookup failing on somebody else's account. The caller's timeout_s therefore leaves its own
        call the time it needs (connector.retry.call_reserve_s), or the call goes out with none left.
        """
        return self._single_flight(ip, lookback_hours, timeout_s)

    @contextmanager
    def _single_flight(self, ip: str, lookback_hours: int, timeout_s: float) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with self._store.lock(self._key("flight", ip, lookback_hours), timeout_s):
            yield
