"""The result cache: a fresh answer is served from the store, and concurrent lookups fetch once."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from connector.cache import CachedAnswer, ResultCache
from connector.state import MemoryStateStore, StateStore
from connector.stores import RedisStateStore, SqliteStateStore

TENANT = "contoso.onmicrosoft.com"
SEEN = {"ipAddress": "10.1.2.3", "organizationPrevalence": 7, "orgPrevalence": "7",
        "orgFirstSeen": "2024-01-01T00:00:00Z", "orgLastSeen": "2024-01-02T00:00:00Z", "seenInOrg": True,
        "lookBackHours": 720}
NOT_SEEN = {"ipAddress": "10.9.9.9", "organizationPrevalence": 0, "orgPrevalence": "0", "orgFirstSeen": None,
            "orgLastSeen": None, "seenInOrg": False, "lookBackHours": 720}


def make_store(shared: dict[str, Any]) -> StateStore:
    if shared["backend"] == "redis":
        return RedisStateStore(shared["where"], shared["namespace"])
    return SqliteStateStore(Path(shared["where"]) / "state.sqlite3")


def test_an_answer_put_is_got_back_exactly_with_its_age(shared: dict[str, Any]) -> None:
    cache = ResultCache(make_store(shared), ttl_s=60, tenant_id=TENANT)
    cache.put("10.1.2.3", 720, SEEN)
    time.sleep(0.2)
    hit = ResultCache(make_store(shared), ttl_s=60, tenant_id=TENANT).get("10.1.2.3", 720)
    assert isinstance(hit, CachedAnswer)
    assert hit.data == SEEN
    assert 0.15 <= hit.age_s < 2.0


def test_not_seen_answers_are_cached_too() -> None:
    cache = ResultCache(MemoryStateStore(), ttl_s=60, tenant_id=TENANT)
    cache.put("10.9.9.9", 720, NOT_SEEN)
    hit = cache.get("10.9.9.9", 720)
    assert hit is not None and hit.data == NOT_SEEN


def test_answers_expire_after_the_ttl(shared: dict[str, Any]) -> None:
    cache = ResultCache(make_store(shared), ttl_s=0.3, tenant_id=TENANT)
    cache.put("10.1.2.3", 720, SEEN)
    time.sleep(0.4)
    assert cache.get("10.1.2.3", 720) is None


def test_a_longer_lived_store_entry_is_still_not_served_past_the_ttl() -> None:
    store = MemoryStateStore()
    ResultCache(store, ttl_s=3600, tenant_id=TENANT).put("10.1.2.3", 720, SEEN)
    time.sleep(0.2)
    assert ResultCache(store, ttl_s=0.1, tenant_id=TENANT).get("10.1.2.3", 720) is None


def test_the_key_is_tenant_ip_and_lookback() -> None:
    store = MemoryStateStore()
    cache = ResultCache(store, ttl_s=60, tenant_id=TENANT)
    cache.put("10.1.2.3", 720, SEEN)
    assert cache.get("10.1.2.3", 48) is None
    assert cache.get("10.1.2.4", 720) is None
    assert ResultCache(store, ttl_s=60, tenant_id="fabrikam.onmicrosoft.com").get("10.1.2.3", 720) is None
    assert ResultCache(store, ttl_s=60, tenant_id=TENANT.upper()).get("10.1.2.3", 720) is not None


def test_spellings_of_one_ipv6_address_share_an_entry() -> None:
    cache = ResultCache(MemoryStateStore(), ttl_s=60, tenant_id=TENANT)
    cache.put("2001:DB8:0:0:0:0:0:1", 24, SEEN)
    assert cache.get("2001:db8::1", 24) is not None


def test_ttl_zero_disables_the_cache_entirely() -> None:
    store = MemoryStateStore()
    cache = ResultCache(store, ttl_s=0, tenant_id=TENANT)
    cache.put("10.1.2.3", 720, SEEN)
    assert cache.get("10.1.2.3", 720) is None
    assert store._values == {}
    with cache.single_flight("10.1.2.3", 720, 1.0), cache.single_flight("10.1.2.3", 720, 0.0):
        pass  # no lock is taken, so nesting cannot block


def test_an_unreadable_entry_is_a_miss() -> None:
    store = MemoryStateStore()
    cache = ResultCache(store, ttl_s=60, tenant_id=TENANT)
    cache.put("10.1.2.3", 720, SEEN)
    (key,) = store._values
    store.set(key, b"{not json")
    assert cache.get("10.1.2.3", 720) is None


def test_single_flight_makes_waiters_find_the_first_fetch_in_the_cache() -> None:
    cache = ResultCache(MemoryStateStore(), ttl_s=60, tenant_id=TENANT)
    fetches: list[int] = []

    def lookup() -> None:
        if cache.get("10.1.2.3", 720) is None:
            with cache.single_flight("10.1.2.3", 720, 5.0):
                if cache.get("10.1.2.3", 720) is None:
                    fetches.append(1)
                    time.sleep(0.2)
                    cache.put("10.1.2.3", 720, SEEN)

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fetches) == 1


def test_single_flight_gives_up_waiting_at_its_timeout_and_goes_ahead() -> None:
    cache = ResultCache(MemoryStateStore(), ttl_s=60, tenant_id=TENANT)
    with cache.single_flight("10.1.2.3", 720, 1.0):
        started = time.monotonic()
        inner = threading.Thread(target=lambda: cache.single_flight("10.1.2.3", 720, 0.2).__enter__())
        inner.start()
        inner.join(timeout=5)
        assert not inner.is_alive()
        assert 0.15 < time.monotonic() - started < 1.0


def test_concurrent_lookups_from_many_processes_fetch_once(shared: dict[str, Any], workers: Any) -> None:
    ip = f"10.{uuid.uuid4().int % 250}.1.1"
    answers = workers.run("single-flight", [{**shared, "ip": ip, "start_at": time.time() + 2.0}] * 8)
    assert sum(answer["fetched"] for answer in answers) == 1
    assert make_store(shared).get("fetches") == b"1"
