"""The token cache at rest: private files, encrypted with a key derived from the credential.

Whoever can read the state directory but does not hold the credential learns no token; a state file
carried to a connector with another credential is unreadable there and costs one sign-in, not a crash,
and never lends that connector a token its own credential could not get.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector import run
from connector.auth import TokenProvider, _cache_cipher, forget_process_tokens
from connector.settings import Settings
from connector.state import MemoryStateStore
from connector.stores import open_state_store
from connector.transport import build_session
from emulator import Emulator
from emulator.testing import JWT_SHAPE as JWT

from .helpers import DOC_IP, config_for, record_issued_tokens


def lookup(config: dict[str, Any], state: Path) -> Any:
    """One action run, as a new process makes it: only the state directory carries the token over."""
    forget_process_tokens()
    [result] = run("get_ip_statistics", {"ip": DOC_IP, "lookback_hours": 24}, config, state_dir=state)
    return result


def cache_key(config: dict[str, Any]) -> str:
    settings = Settings.load(config)
    return TokenProvider(settings, build_session(settings), MemoryStateStore())._cache_key


def stored_cache(config: dict[str, Any], state: Path) -> bytes:
    store = open_state_store(Settings.load(config), state)
    try:
        blob = store.get(cache_key(config))
    finally:
        getattr(store, "close", lambda: None)()
    assert blob is not None, "no token cache was stored"
    return blob


def test_state_files_holding_data_are_0600_in_a_0700_directory(emulator: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert lookup(config_for(emulator), state).status == "success"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = [p for p in state.rglob("*") if p.is_file()]
    holding_data = [p for p in files if p.stat().st_size > 0]
    assert any(p.name == "state.sqlite3" for p in holding_data)
    for path in holding_data:  # (empty lock files are shielded by the directory alone)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is {oct(path.stat().st_mode)}"


def test_the_cache_is_fernet_encrypted_with_a_key_from_the_credential(emulator: Emulator, tmp_path: Path) -> None:
    tokens = record_issued_tokens(emulator)
    config = config_for(emulator)
    state = tmp_path / "state"
    assert lookup(config, state).status == "success"
    [token] = tokens
    blob = stored_cache(config, state)
    assert blob.startswith(b"gAAAAA"), "not a Fernet token"
    plaintext = _cache_cipher(Settings.load(config)).decrypt(blob).decode()
    assert token in plaintext, "the encrypted blob is not the MSAL cache"
    for path in (p for p in state.rglob("*") if p.is_file()):
        content = path.read_bytes()
        assert not JWT.search(content.decode("latin-1")) and token.encode() not in content, path.name
        assert config["client_secret"].encode() not in content, path.name


def test_a_state_file_carried_to_another_credential_is_just_a_new_sign_in(emulator: Emulator, tmp_path: Path) -> None:
    """Same tenant, app and sign-in host (so the same cache entry), another credential: the entry does
    not decrypt, the connector signs in with its own credential and overwrites it."""
    secret = config_for(emulator)
    certificate = config_for(emulator, auth="certificate")
    assert cache_key(secret) == cache_key(certificate)
    original = tmp_path / "original"
    assert lookup(secret, original).status == "success"
    carried = tmp_path / "carried"
    shutil.copytree(original, carried)
    before = emulator.counters()["token_requests"]

    assert lookup(certificate, carried).status == "success"
    assert emulator.counters()["token_requests"] == before + 1, "the other credential's token was used"
    _cache_cipher(Settings.load(certificate)).decrypt(stored_cache(certificate, carried))  # rewritten for it


def test_a_wrong_secret_never_borrows_the_cached_token(emulator: Emulator, tmp_path: Path) -> None:
    secret = config_for(emulator)
    state = tmp_path / "state"
    assert lookup(secret, state).status == "success"
    calls = emulator.counters()["api_calls"]
    refused = lookup({**secret, "client_secret": "not-the-secret-" + "x" * 24}, state)
    assert refused.error is not None and refused.error.category == "authentication"
    assert emulator.counters()["api_calls"] == calls, "an API call was made with a token the credential can't get"
    before = emulator.counters()["token_requests"]
    assert lookup(secret, state).status == "success"
    assert emulator.counters()["token_requests"] == before, "the failed sign-in clobbered the real cache"


def test_a_corrupted_cache_is_a_new_sign_in(emulator: Emulator, tmp_path: Path) -> None:
    config = config_for(emulator)
    state = tmp_path / "state"
    assert lookup(config, state).status == "success"
    store = open_state_store(Settings.load(config), state)
    corruptions: list[Callable[[bytes], bytes]] = [lambda b: b[:-7], lambda b: b"not fernet", lambda b: b"\x00" * 64]
    for corrupt in corruptions:
        store.set(cache_key(config), corrupt(stored_cache(config, state)))
        before = emulator.counters()["token_requests"]
        assert lookup(config, state).status == "success"
        assert emulator.counters()["token_requests"] == before + 1
    getattr(store, "close", lambda: None)()
