"""The times in the stored token cache, read as MSAL reads them: an expiry MSAL cannot read is an
expired token (never an exception out of run()), and a token Entra ID asked to renew early (refresh_in,
kept by MSAL as refresh_on) is renewed then, not only five minutes before it expires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector import run
from connector.auth import TokenProvider, _cache_cipher, forget_process_tokens
from connector.settings import Settings
from connector.state import MemoryStateStore
from connector.stores import open_state_store
from connector.transport import build_session
from emulator import Emulator
from emulator.faults import Fault

from .helpers import DOC_IP, api_log, config_for


def lookup(config: dict[str, Any], state: Path) -> Any:
    """One action run, as a new process makes it: only the state directory carries the token over."""
    forget_process_tokens()
    [result] = run("get_ip_statistics", {"ip": DOC_IP, "lookback_hours": 24}, config, state_dir=state)
    return result


def rewrite_access_tokens(config: dict[str, Any], state: Path, **fields: str) -> None:
    """Set fields of every cached access token, in the stored (encrypted) cache, as a damaged or foreign
    cache would hold them."""
    settings = Settings.load(config)
    key = TokenProvider(settings, build_session(settings), MemoryStateStore())._cache_key
    cipher = _cache_cipher(settings)
    store = open_state_store(settings, state)
    try:
        cache = json.loads(cipher.decrypt(store.get(key) or b""))
        assert cache["AccessToken"], "no access token was cached"
        for entry in cache["AccessToken"].values():
            entry.update(fields)
        store.set(key, cipher.encrypt(json.dumps(cache).encode()))
    finally:
        getattr(store, "close", lambda: None)()


def token_requests(emu: Emulator) -> list[dict[str, Any]]:
    return [entry for entry in emu.request_log() if entry["route"] == "token"]


@pytest.mark.parametrize("expires_on", ["soon", "", "1.5e9", "None"])
def test_an_unreadable_expiry_is_an_expired_token_and_a_new_sign_in(emulator: Emulator, tmp_path: Path,
                                                                    expires_on: str) -> None:
    config = config_for(emulator)
    state = tmp_path / "state"
    assert lookup(config, state).status == "success"
    rewrite_access_tokens(config, state, expires_on=expires_on)
    result = lookup(config, state)  # once an exception out of run()
    assert result.status == "success", result.message
    assert len(token_requests(emulator)) == 2
    assert lookup(config, state).status == "success"  # the new token was cached in its place
    assert len(token_requests(emulator)) == 2


def test_an_unreadable_renewal_time_is_an_expired_token_too(emulator: Emulator, tmp_path: Path) -> None:
    config = config_for(emulator)
    state = tmp_path / "state"
    assert lookup(config, state).status == "success"
    rewrite_access_tokens(config, state, refresh_on="later")
    assert lookup(config, state).status == "success"
    assert len(token_requests(emulator)) == 2


def test_a_token_is_renewed_when_entra_id_asked_not_only_near_expiry(make_emulator: Callable[..., Emulator],
                                                                     tmp_path: Path) -> None:
    emu = make_emulator(token_refresh_in_s=2)  # a one-hour token, to be renewed after 1 to 2 s
    config = config_for(emu)
    state = tmp_path / "state"
    assert lookup(config, state).status == "success"
    assert lookup(config, state).status == "success"
    assert len(token_requests(emu)) == 1  # within refresh_in: the cached token
    time.sleep(2.2)  # MSAL keeps refresh_on as int(issued at) + refresh_in
    assert lookup(config, state).status == "success"
    assert len(token_requests(emu)) == 2, "refresh_on passed: the token should have been renewed"


def test_a_held_token_is_renewed_when_entra_id_asked_in_a_long_lived_worker(make_emulator: Callable[..., Emulator],
                                                                          tmp_path: Path) -> None:
    emu = make_emulator(token_refresh_in_s=2)
    config = config_for(emu)
    state = tmp_path / "state"
    forget_process_tokens()
    for _ in range(2):
        [result] = run("get_ip_statistics", {"ip": DOC_IP}, config, state_dir=state)  # the same process
        assert result.status == "success"
    assert len(token_requests(emu)) == 1
    time.sleep(2.2)  # MSAL keeps refresh_on as int(issued at) + refresh_in
    [result] = run("get_ip_statistics", {"ip": DOC_IP}, config, state_dir=state)
    assert result.status == "success" and len(token_requests(emu)) == 2


def test_a_renewal_the_sign_in_service_fails_falls_back_on_the_still_valid_token(
        make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = make_emulator(token_refresh_in_s=2)
    config = config_for(emu, item_budget_s=5)
    state = tmp_path / "state"
    assert lookup(config, state).status == "success"
    time.sleep(2.2)  # MSAL keeps refresh_on as int(issued at) + refresh_in
    emu.inject_fault(Fault(route="token", status=503, headers={"Retry-After": "1"}), count=None)
    calls = len(api_log(emu))
    result = lookup(config, state)
    assert result.status == "success", result.message
    assert len(api_log(emu)) == calls + 1
    assert [entry["status"] for entry in token_requests(emu)][1:] == [503], "the renewal was not attempted"
