"""The shared state stores: what one process writes, every other sees; locks hold across processes."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from connector.errors import ConfigurationError, UnavailableError
from connector.settings import Settings
from connector.state import MemoryStateStore, StateStore
from connector.stores import RedisStateStore, SqliteStateStore, open_state_store

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"


def make_store(shared: dict[str, Any], lease_s: float = 30.0) -> StateStore:
    if shared["backend"] == "redis":
        return RedisStateStore(shared["where"], shared["namespace"], lease_s=lease_s)
    return SqliteStateStore(Path(shared["where"]) / "state.sqlite3", lease_s=lease_s)


def settings(**overrides: Any) -> Settings:
    return Settings(tenant_id=TENANT, client_id=CLIENT, client_secret="s3cret", **overrides)


def test_a_value_written_is_read_back_until_deleted(shared: dict[str, Any]) -> None:
    store = make_store(shared)
    store.set("k", b"\x00value\xff")
    assert make_store(shared).get("k") == b"\x00value\xff"
    store.delete("k")
    assert store.get("k") is None


def test_a_value_expires_after_its_ttl(shared: dict[str, Any]) -> None:
    store = make_store(shared)
    store.set("k", b"v", ttl_s=0.3)
    assert store.get("k") == b"v"
    time.sleep(0.4)
    assert store.get("k") is None


def test_overwriting_without_ttl_makes_the_value_permanent(shared: dict[str, Any]) -> None:
    store = make_store(shared)
    store.set("k", b"old", ttl_s=0.2)
    store.set("k", b"new")
    time.sleep(0.3)
    assert store.get("k") == b"new"


def test_the_sqlite_file_is_private_to_its_owner(tmp_path: Path) -> None:
    SqliteStateStore(tmp_path / "state" / "state.sqlite3").set("token", b"secret")
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for file in (tmp_path / "state").iterdir():
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file.name


def test_a_lock_is_exclusive_and_a_waiter_gives_up_at_its_timeout(shared: dict[str, Any]) -> None:
    first, second = make_store(shared), make_store(shared)
    with first.lock("name", 1.0) as held:
        assert held
        started = time.monotonic()
        with second.lock("name", 0.2) as also:
            assert also is False
        assert 0.15 < time.monotonic() - started < 1.0
    with second.lock("name", 0.2) as held_after_release:
        assert held_after_release


def test_a_waiter_gets_the_lock_soon_after_it_is_released(shared: dict[str, Any]) -> None:
    store = make_store(shared)
    released_at: list[float] = []

    def holder() -> None:
        with store.lock("name", 1.0):
            time.sleep(0.3)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=holder)
    thread.start()
    time.sleep(0.05)
    with make_store(shared).lock("name", 5.0) as held:
        got_at = time.monotonic()
    thread.join()
    assert held
    assert got_at - released_at[0] < 0.1


def test_locks_with_different_names_do_not_block_each_other(shared: dict[str, Any]) -> None:
    store = make_store(shared)
    with store.lock("a", 1.0) as a, store.lock("b", 0.0) as b:
        assert a and b


def test_a_lock_serialises_read_modify_write_across_processes(shared: dict[str, Any], workers: Any) -> None:
    start_at = time.time() + 1.5
    workers.run("lock-counter", [{**shared, "n": 25, "start_at": start_at} for _ in range(6)])
    assert make_store(shared).get("counter") == b"150"


def test_a_live_holder_keeps_its_lock_beyond_the_lease(shared: dict[str, Any]) -> None:
    holder, other = make_store(shared, lease_s=0.3), make_store(shared, lease_s=0.3)
    with holder.lock("long", 1.0) as held:
        assert held
        with other.lock("long", 1.0) as stolen:
            assert stolen is False


def test_a_crashed_holder_blocks_no_longer_than_its_lease(shared: dict[str, Any], workers: Any) -> None:
    proc = workers.start("hold-and-die", {**shared, "lease_s": 1.0})
    out, err = proc.communicate(timeout=60)
    assert json.loads(out.splitlines()[0]) == {"held": True}, err
    started = time.monotonic()
    with make_store(shared, lease_s=1.0).lock("crash", 5.0) as held:
        waited = time.monotonic() - started
    assert held
    assert waited < 1.5


def test_sqlite_steals_at_once_the_lock_of_a_dead_process_on_the_same_host(tmp_path: Path,
                                                                           workers: Any) -> None:
    shared = {"backend": "sqlite", "where": str(tmp_path / "state"), "lease_s": 600.0}
    out, _ = workers.start("hold-and-die", shared).communicate(timeout=60)
    assert json.loads(out.splitlines()[0]) == {"held": True}
    started = time.monotonic()
    with SqliteStateStore(tmp_path / "state" / "state.sqlite3", lease_s=600.0).lock("crash", 5.0) as held:
        assert held
    assert time.monotonic() - started < 2.0  # not the 5 s lock timeout, let alone the 600 s lease


def test_redis_release_never_frees_a_lock_someone_else_took_after_expiry(redis_url: str, namespace: str) -> None:
    slow, fast = (RedisStateStore(redis_url, namespace, lease_s=0.2) for _ in range(2))
    lock = slow.lock("name", 1.0)
    assert lock.__enter__()
    slow.client.pexpire(f"{namespace}:lock:name", 1)  # the lease lapses (say the holder froze)
    time.sleep(0.05)
    with fast.lock("name", 1.0) as taken:
        assert taken
        lock.__exit__(None, None, None)  # the old holder wakes up and releases
        assert slow.client.exists(f"{namespace}:lock:name") == 1
        with RedisStateStore(redis_url, namespace).lock("name", 0.1) as third:
            assert third is False


def test_redis_keys_live_under_the_namespace(redis_url: str, namespace: str) -> None:
    store = RedisStateStore(redis_url, namespace)
    store.set("k", b"v")
    assert store.client.get(f"{namespace}:kv:k") == b"v"
    assert RedisStateStore(redis_url, namespace + "-other").get("k") is None


def test_an_unreachable_redis_is_unavailable_and_the_message_hides_the_password() -> None:
    store = RedisStateStore("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(UnavailableError) as caught:
        store.get("k")
    assert "hunter2" not in caught.value.message
    assert "127.0.0.1:1" in caught.value.message


def test_a_malformed_redis_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        RedisStateStore("http://not-redis")


def test_open_state_store_follows_the_backend_setting(tmp_path: Path, redis_url: str) -> None:
    sqlite = open_state_store(settings(), tmp_path)
    assert isinstance(sqlite, SqliteStateStore) and sqlite.path == tmp_path / "state.sqlite3"
    assert isinstance(open_state_store(settings(store_backend="redis", store_url=redis_url), tmp_path),
                      RedisStateStore)
    memory = open_state_store(settings(store_backend="memory"), tmp_path)
    assert isinstance(memory, MemoryStateStore)
    assert open_state_store(settings(store_backend="memory"), tmp_path) is memory


def test_a_state_directory_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigurationError) as caught:
        SqliteStateStore(tmp_path / "a-file" / "state" / "state.sqlite3")
    assert "state directory" in caught.value.message


def test_a_failed_commit_is_rolled_back_so_the_write_lock_is_not_kept(tmp_path: Path) -> None:
    import sqlite3

    from connector.stores import immediate_transaction

    conn = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), immediate_transaction(conn):
        conn.execute("INSERT INTO child VALUES (42)")  # refused only at COMMIT, which leaves it open
    assert not conn.in_transaction
    with immediate_transaction(conn):  # the next transaction can begin
        conn.execute("INSERT INTO parent VALUES (1)")
    assert conn.execute("SELECT count(*) FROM parent").fetchone()[0] == 1


def test_a_file_that_never_switches_to_wal_is_used_in_rollback_journal_mode(tmp_path: Path) -> None:
    from types import SimpleNamespace

    store = SqliteStateStore(tmp_path / "state.sqlite3")

    class RefusesWal:  # what SQLite answers on a file system or VFS without shared memory
        def execute(self, sql: str, *args: object) -> SimpleNamespace:
            return SimpleNamespace(fetchone=lambda: ("delete",))

    real, store._conn = store._conn, RefusesWal()  # type: ignore[assignment]
    store._switch_to_wal(timeout_s=0.2)  # returns (the store carries on) instead of failing the action
    store._conn = real
    store.set("k", b"v")
    assert store.get("k") == b"v"
