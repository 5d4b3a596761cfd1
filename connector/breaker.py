"""A circuit breaker shared by every process that calls one tenant's Defender API.

When Defender is down (every call 500/503, the connection refused, timing out), each lookup would
otherwise spend its retries (up to MAX_ATTEMPTS_PER_ITEM calls and its time budget) learning what the
lookup before it already learnt, and a storm's workers would sit in backoff on every IP while their calls
spend the rate limit everyone shares. The breaker lets every worker learn it once:

- **closed** (no record, or a count of failures): calls go; each failed call adds one, any answer
  that is not a 5xx (a 200, a 404, even a 4xx or a 429: the service is there) clears the record;
- **open** after ``threshold`` failed calls in a row, counted across every process sharing the state
  store: a lookup fails at once as ``unavailable``, with the time to the next test call as
  ``retry_after_s``, and makes no call;
- **one probe per interval**: the first lookup at or after the open record's ``retry_at`` claims the
  probe by moving ``retry_at`` one interval on, in the same atomic update (state.update: one SQLite
  transaction, a Redis WATCH/MULTI, a lock in memory), so exactly one process sends it. Its success
  closes the breaker; its failure opens it again for one interval. A prober that dies holds nothing:
  the next interval has its own probe.

429s are not counted (the rate gate's shared pause answers them), nor are failures to sign in (Entra
ID is another service), nor an untrusted certificate (a configuration fault, not an outage). The
default threshold (10) is above the calls one lookup may make (6), so a single lookup's retries never
open it on their own. The record is a few bytes of JSON under one key per tenant and API host; a
closed breaker costs a read before each call and one after it. Times are on the store's clock (the host's wall clock for
SQLite, the Redis server's), and an open record whose ``retry_at`` lies further ahead than an interval
(the clock stepped back) is moved to one interval from now (connector.clock).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import NamedTuple

from connector.clock import stepped_back
from connector.errors import UnavailableError
from connector.settings import Settings
from connector.state import MemoryStateStore, StateStore, update

log = logging.getLogger(__name__)

CIRCUIT_OPEN = "CircuitOpen"
"""error.code of a lookup refused because the breaker is open."""


class BreakerRecord(NamedTuple):
    """What the store holds: failed calls in a row, when the next probe may go (None: closed), and the
    last failure in a few words, for the message."""

    failures: int
    retry_at: float | None = None
    why: str = ""

    def encode(self) -> bytes:
        return json.dumps([self.failures, self.retry_at, self.why]).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> BreakerRecord | None:
        """The record, or None for none (or one that is not a record: a damaged one counts as closed)."""
        if raw is None:
            return None
        try:
            failures, retry_at, why = json.loads(raw)
            return cls(int(failures), None if retry_at is None else float(retry_at), str(why)[:80])
        except (ValueError, TypeError):
            return None

    @property
    def is_open(self) -> bool:
        return self.retry_at is not None


class Verdict(NamedTuple):
    """The breaker's answer: go (as the probe or not), or wait this long (None: go)."""

    probe: bool
    wait_s: float | None
    record: BreakerRecord | None


def admit(record: BreakerRecord | None, now: float, interval_s: float) -> tuple[BreakerRecord | None, Verdict]:
    """Before a call: a closed breaker lets it go; an open one makes it wait for retry_at, or, once that
    has come, makes it the probe and sets the next probe one interval on."""
    if record is None or record.retry_at is None:
        return record, Verdict(False, None, record)
    retry_at = now + interval_s if stepped_back(record.retry_at, now, interval_s) else record.retry_at
    if now < retry_at:
        record = record._replace(retry_at=retry_at)
        return record, Verdict(False, retry_at - now, record)
    claimed = record._replace(retry_at=now + interval_s)
    return claimed, Verdict(True, None, claimed)


def count_failure(record: BreakerRecord | None, now: float, threshold: int, interval_s: float, why: str,
                  *, probe: bool) -> tuple[BreakerRecord, Verdict]:
    """After a failed call: one more in a row; the threshold-th opens the breaker, a failed probe opens it
    again for a whole interval (unless another call's success closed it meanwhile: then it counts as one
    more), and a failure while open (a call sent before it opened) changes nothing."""
    is_open = record is not None and record.retry_at is not None
    if record is not None and record.retry_at is not None and not probe:
        return record, Verdict(False, max(record.retry_at - now, 0.0), record)
    failures = (record.failures if record is not None else 0) + 1
    if (probe and is_open) or failures >= threshold:
        opened = BreakerRecord(failures, now + interval_s, why)
        return opened, Verdict(False, interval_s, opened)
    counted = BreakerRecord(failures, None, why)
    return counted, Verdict(False, None, counted)


def breaker_key(tenant_id: str, api_url: str) -> str:
    """One breaker per tenant and API host: the service that is down, whoever calls it."""
    digest = hashlib.sha256(f"{tenant_id.strip().lower()}|{api_url.rstrip('/').lower()}".encode()).hexdigest()
    return f"breaker:{digest[:24]}"


class Breaker:
    """The breaker around each API call: ``before_call()``, then ``succeeded()`` or ``failed()``."""

    def __init__(self, store: StateStore, key: str, threshold: int, probe_interval_s: float) -> None:
        self._store = store
        self._key = key
        self.threshold = threshold
        self.probe_interval_s = probe_interval_s

    @classmethod
    def off(cls) -> Breaker:
        """A breaker that never opens (threshold 0)."""
        return cls(MemoryStateStore(), "breaker:off", 0, 1.0)

    @classmethod
    def for_settings(cls, settings: Settings, store: StateStore) -> Breaker:
        return cls(store, breaker_key(settings.tenant_id, settings.endpoints.api_url), settings.breaker_threshold,
                   settings.breaker_probe_interval_s)

    def before_call(self) -> bool:
        """Whether the call about to go is the probe (False: an ordinary call of a closed breaker).
        Raises UnavailableError, at once and without a call, while the breaker is open."""
        if not self.threshold:
            return False
        record = BreakerRecord.decode(self._store.get(self._key))
        if record is None or not record.is_open:
            return False  # the usual case: one read, no write (succeeded() reads once more after the call)
        admission = update(self._store, self._key, self._admitting)
        if admission.wait_s is not None:
            raise self._open_error(admission)
        if admission.probe:
            log.info("Defender API: this call is the probe after %d failed calls in a row", record.failures)
        return admission.probe

    def succeeded(self) -> None:
        """The service answered (not a 5xx): the run of failures ends, and an open breaker closes."""
        if self.threshold and self._store.get(self._key) is not None:
            self._store.delete(self._key)
            log.info("Defender API answered: the breaker is closed")

    def failed(self, why: str, *, probe: bool) -> UnavailableError | None:
        """A call failed as an outage does (5xx, refused, timed out): counted; when the breaker is open
        after it, the error to fail the lookup with at once (its retries would be refused anyway)."""
        if not self.threshold:
            return None
        admission = update(self._store, self._key, lambda raw, now: self._counting(raw, now, why, probe))
        if admission.wait_s is None:
            return None
        if admission.record is not None and (probe or admission.record.failures == self.threshold):
            log.warning("Defender API: %d calls in a row failed (last: %s); lookups make no call for %.1f s",
                        admission.record.failures, why, admission.wait_s)
        return self._open_error(admission)

    def _admitting(self, raw: bytes | None, now: float) -> tuple[bytes | None, Verdict]:
        record, admission = admit(BreakerRecord.decode(raw), now, self.probe_interval_s)
        return (None if record is None else record.encode()), admission

    def _counting(self, raw: bytes | None, now: float, why: str, probe: bool) -> tuple[bytes | None, Verdict]:
        record, admission = count_failure(BreakerRecord.decode(raw), now, self.threshold, self.probe_interval_s,
                                          why, probe=probe)
        return record.encode(), admission

    def _open_error(self, admission: Verdict) -> UnavailableError:
        wait = math.ceil((admission.wait_s or 0.0) * 10) / 10
        record = admission.record or BreakerRecord(self.threshold)
        last = f" (the last: {record.why})" if record.why else ""
        return UnavailableError(
            f"The Defender API is failing: {record.failures} calls in a row failed{last}, so lookups make no "
            f"call until it answers again. One test call every {self.probe_interval_s:g} s checks whether it "
            f"is back; retry after {wait:g} s.",
            code=CIRCUIT_OPEN, retry_after_s=wait)
