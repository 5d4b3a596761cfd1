"""The shared circuit breaker's state machine, on each store the connector keeps shared state in.

Every test runs on the memory store, on SQLite (each "process" its own connection to one file) and on
Redis (each its own store object; one server), so that what one sharer records, the others see, and
the probe is claimed by one of them only. Intervals are fractions of a second, on each store's clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from connector.breaker import CIRCUIT_OPEN, Breaker, BreakerRecord, breaker_key
from connector.clock import SteppedClock
from connector.errors import UnavailableError
from connector.state import MemoryStateStore, StateStore, update
from connector.stores import RedisStateStore, SqliteStateStore

THRESHOLD = 4
INTERVAL_S = 0.6
KEY = breaker_key("contoso.onmicrosoft.com", "https://api.security.microsoft.com")

StoreFactory = Callable[[], StateStore]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of stores that share one state: one memory store, connections to one SQLite file, or
    clients of one Redis namespace."""
    if request.param == "memory":
        shared = MemoryStateStore()
        yield lambda: shared
    elif request.param == "sqlite":
        opened: list[SqliteStateStore] = []

        def sqlite() -> StateStore:
            opened.append(SqliteStateStore(tmp_path / "state.sqlite3"))
            return opened[-1]

        yield sqlite
        for store in opened:
            store.close()
    else:
        url, namespace = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex[:12]}"
        yield lambda: RedisStateStore(url, namespace)


def breaker(store: StateStore, threshold: int = THRESHOLD, interval_s: float = INTERVAL_S) -> Breaker:
    return Breaker(store, KEY, threshold, interval_s)


def open_breaker(stores: StoreFactory) -> UnavailableError:
    opened: UnavailableError | None = None
    for _ in range(THRESHOLD):
        opened = breaker(stores()).failed("503", probe=False)
    assert opened is not None
    return opened


def refusal(b: Breaker) -> UnavailableError:
    with pytest.raises(UnavailableError) as caught:
        b.before_call()
    return caught.value


def test_one_failure_short_of_the_threshold_leaves_it_closed(stores: StoreFactory) -> None:
    for _ in range(THRESHOLD - 1):
        assert breaker(stores()).failed("503", probe=False) is None
    assert breaker(stores()).before_call() is False  # closed: the call goes, and it is no probe


def test_the_threshold_th_failure_in_a_row_opens_it_for_every_sharer(stores: StoreFactory) -> None:
    opened = open_breaker(stores)
    assert opened.code == CIRCUIT_OPEN and opened.category == "unavailable"
    assert opened.retry_after_s is not None and 0 < opened.retry_after_s <= INTERVAL_S + 0.1
    refused = refusal(breaker(stores()))  # another sharer: refused at once
    assert refused.code == CIRCUIT_OPEN
    assert refused.retry_after_s is not None and 0 < refused.retry_after_s <= INTERVAL_S + 0.1
    assert f"{THRESHOLD} calls in a row failed (the last: 503)" in refused.message
    assert f"retry after {refused.retry_after_s:g} s" in refused.message


def test_a_success_ends_the_run_of_failures(stores: StoreFactory) -> None:
    for _ in range(THRESHOLD - 1):
        breaker(stores()).failed("ConnectionError", probe=False)
    breaker(stores()).succeeded()
    for _ in range(THRESHOLD - 1):
        assert breaker(stores()).failed("ConnectionError", probe=False) is None
    assert breaker(stores()).before_call() is False


def test_after_the_interval_exactly_one_of_many_sharers_wins_the_probe(stores: StoreFactory) -> None:
    open_breaker(stores)
    time.sleep(INTERVAL_S + 0.05)
    breakers = [breaker(stores()) for _ in range(8)]
    start = threading.Barrier(len(breakers))
    outcomes: list[bool | UnavailableError] = []
    guard = threading.Lock()

    def race(b: Breaker) -> None:
        start.wait()
        try:
            outcome: bool | UnavailableError = b.before_call()
        except UnavailableError as exc:
            outcome = exc
        with guard:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(b,)) for b in breakers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes.count(True) == 1, outcomes  # one probe; nobody goes as an ordinary call
    refused = [o for o in outcomes if isinstance(o, UnavailableError)]
    assert len(refused) == len(breakers) - 1
    # The others are told to come back at the next probe, one interval after this one was claimed.
    assert all(r.retry_after_s is not None and 0 < r.retry_after_s <= INTERVAL_S + 0.1
               for r in refused), [r.retry_after_s for r in refused]


def test_the_probes_success_closes_it(stores: StoreFactory) -> None:
    open_breaker(stores)
    time.sleep(INTERVAL_S + 0.05)
    prober = breaker(stores())
    assert prober.before_call() is True
    prober.succeeded()
    assert [breaker(stores()).before_call() for _ in range(3)] == [False, False, False]
    assert stores().get(KEY) is None


def test_a_failing_probe_opens_it_again_for_a_whole_interval(stores: StoreFactory) -> None:
    open_breaker(stores)
    time.sleep(INTERVAL_S + 0.05)
    prober = breaker(stores())
    assert prober.before_call() is True
    reopened = prober.failed("503", probe=True)
    assert reopened is not None and reopened.retry_after_s is not None
    assert INTERVAL_S - 0.1 < reopened.retry_after_s <= INTERVAL_S + 0.1
    assert refusal(breaker(stores())).code == CIRCUIT_OPEN
    time.sleep(INTERVAL_S + 0.05)
    assert breaker(stores()).before_call() is True  # the next interval has its probe


def test_a_call_sent_before_it_opened_failing_late_does_not_push_the_probe_back(stores: StoreFactory) -> None:
    open_breaker(stores)
    time.sleep(INTERVAL_S / 2)
    late = breaker(stores()).failed("ReadTimeout", probe=False)
    assert late is not None and late.retry_after_s is not None and late.retry_after_s <= INTERVAL_S / 2 + 0.1
    time.sleep(INTERVAL_S / 2 + 0.05)
    assert breaker(stores()).before_call() is True


def test_a_success_of_a_late_call_closes_it_too(stores: StoreFactory) -> None:
    open_breaker(stores)
    breaker(stores()).succeeded()  # any answer that is not a 5xx: the service is there
    assert breaker(stores()).before_call() is False


def test_threshold_zero_never_opens(stores: StoreFactory) -> None:
    off = breaker(stores(), threshold=0)
    assert all(off.failed("503", probe=False) is None for _ in range(20))
    assert off.before_call() is False
    assert stores().get(KEY) is None  # and keeps nothing


def test_a_damaged_record_counts_as_closed(stores: StoreFactory) -> None:
    stores().set(KEY, b"\xff not json")
    assert breaker(stores()).before_call() is False
    assert breaker(stores()).failed("503", probe=False) is None
    assert BreakerRecord.decode(stores().get(KEY)) == BreakerRecord(1, None, "503")


def test_an_open_record_left_by_a_clock_stepped_back_waits_one_interval_not_the_step(tmp_path: Path) -> None:
    clock = SteppedClock()
    store = SqliteStateStore(tmp_path / "state.sqlite3", clock=clock)
    for _ in range(THRESHOLD):
        breaker(store).failed("503", probe=False)
    clock.step(-3600.0)  # the open record's retry_at is now an hour ahead
    refused = refusal(breaker(store))
    assert refused.retry_after_s is not None and refused.retry_after_s <= INTERVAL_S + 0.1
    time.sleep(INTERVAL_S + 0.05)
    assert breaker(store).before_call() is True


class LockOnlyStore:
    """A platform's store (get, set, delete, lock: no update of its own), over a memory store."""

    def __init__(self) -> None:
        self._inner = MemoryStateStore()
        self.locked: list[str] = []

    def get(self, key: str) -> bytes | None:
        return self._inner.get(key)

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._inner.set(key, value, ttl_s)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def lock(self, name: str, timeout_s: float) -> AbstractContextManager[bool]:
        self.locked.append(name)
        return self._inner.lock(name, timeout_s)


def test_a_store_without_an_update_of_its_own_is_updated_under_its_lock() -> None:
    store = LockOnlyStore()
    assert update(store, "k", lambda raw, now: (b"1", raw)) is None
    assert update(store, "k", lambda raw, now: (None, raw)) == b"1"
    assert store.get("k") is None and store.locked == ["update:k", "update:k"]
    for _ in range(THRESHOLD):
        breaker(store).failed("503", probe=False)
    assert refusal(breaker(store)).code == CIRCUIT_OPEN
