"""The core's StateStore over the SDK's AssetState (the SDK's own class, on its local BaseConnector)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from soar_helpers import APP_DIR
from soar_sdk.asset_state import AssetState
from soar_sdk.shims.phantom.base_connector import BaseConnector

sys.path.insert(0, str(APP_DIR.parent))
from splunk_soar.src.state import AssetStateStore

from connector.state import StateStore


class Backend(BaseConnector):
    """One action run's connector: its own copy of the asset state, saved to a shared "file" the way
    SOAR's connector saves the asset's state file (and re-read by reload_state_from_file, as the SDK's
    actions manager does for ``force_reload``)."""

    def __init__(self, disk: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.saves = 0
        self.disk = disk if disk is not None else {}
        super().save_state(dict(self.disk.get("state", {})))

    def handle_action(self, param: dict[str, Any]) -> None:  # pragma: no cover - abstract in the SDK
        raise NotImplementedError

    def save_state(self, state: dict) -> None:
        self.saves += 1
        super().save_state(state)
        self.disk["state"] = dict(state)

    def reload_state_from_file(self, asset_id: str) -> dict:
        state = dict(self.disk.get("state", {}))
        if state:
            super().save_state(state)
        return state


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(backend: Backend, clock: Clock) -> AssetStateStore:
    return AssetStateStore(AssetState(backend, "auth", "42", encrypted=True), clock=clock)


def test_it_satisfies_the_core_protocol(store: AssetStateStore) -> None:
    assert isinstance(store, StateStore)


def test_bytes_round_trip_and_are_kept_encrypted_in_the_state(store: AssetStateStore, backend: Backend) -> None:
    store.set("k", b"\x00\xffsecret token")
    assert store.get("k") == b"\x00\xffsecret token"
    assert isinstance(backend.load_state()["auth"], str)
    assert "secret token" not in backend.load_state()["auth"]


def test_values_expire_after_their_ttl(store: AssetStateStore, clock: Clock) -> None:
    store.set("k", b"v", ttl_s=10)
    clock.now += 9.9
    assert store.get("k") == b"v"
    clock.now += 0.2
    assert store.get("k") is None


def test_delete_and_missing_keys(store: AssetStateStore) -> None:
    assert store.get("absent") is None
    store.delete("absent")
    store.set("k", b"v")
    store.delete("k")
    assert store.get("k") is None


def test_a_session_saves_once_and_drops_expired_entries(store: AssetStateStore, backend: Backend,
                                                        clock: Clock) -> None:
    store.set("old", b"x", ttl_s=1)
    clock.now += 5
    backend.saves = 0
    with store.session():
        for i in range(20):
            store.set(f"k{i}", b"v")
        assert store.get("k3") == b"v"
        assert backend.saves == 0
    assert backend.saves == 1
    assert "old" not in AssetState(backend, "auth", "42").get_all()
    assert store.get("k19") == b"v"


def test_a_failed_session_saves_nothing(store: AssetStateStore, backend: Backend) -> None:
    with pytest.raises(RuntimeError), store.session():
        store.set("k", b"v")
        raise RuntimeError("boom")
    assert store.get("k") is None


def test_locks_are_exclusive_within_the_process(store: AssetStateStore) -> None:
    with store.lock("token", timeout_s=1) as first:
        assert first is True
        with store.lock("token", timeout_s=0.05) as second:
            assert second is False
        with store.lock("other", timeout_s=0.05) as third:
            assert third is True


def run_store(disk: dict[str, Any], clock: Clock) -> tuple[Backend, AssetStateStore]:
    """A new action run (process) on the asset whose state file is `disk`."""
    backend = Backend(disk)
    return backend, AssetStateStore(AssetState(backend, "auth", "42", encrypted=True), clock=clock)


def test_overlapping_runs_each_keep_their_own_changes(clock: Clock) -> None:
    """A sign-in finishing while another run refreshes a token: neither write undoes the other."""
    disk: dict[str, Any] = {}
    _, setup = run_store(disk, clock)
    setup.set("device-flow", b"pending")
    _, signing_in = run_store(disk, clock)
    _, looking_up = run_store(disk, clock)
    with signing_in.session(), looking_up.session():
        assert looking_up.get("device-flow") == b"pending"
        signing_in.set("tokens", b"analyst")
        signing_in.delete("device-flow")
        looking_up.set("other", b"refreshed")
    _, later = run_store(disk, clock)
    assert (later.get("tokens"), later.get("other"), later.get("device-flow")) == (b"analyst", b"refreshed", None)


def test_a_run_that_changes_nothing_writes_nothing(clock: Clock) -> None:
    disk: dict[str, Any] = {}
    _, setup = run_store(disk, clock)
    setup.set("tokens", b"old")
    reader_backend, reader = run_store(disk, clock)
    _, writer = run_store(disk, clock)
    with reader.session():
        assert reader.get("tokens") == b"old"
        with writer.session():
            writer.set("tokens", b"new")
    assert reader_backend.saves == 0
    _, later = run_store(disk, clock)
    assert later.get("tokens") == b"new"
