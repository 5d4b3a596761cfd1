"""Delegated access when the sign-in changes hands in another process: a long-lived worker must act as
the person signed in *now*, for its tokens, its result-cache hits and test_connectivity alike.

"Another process" is a real one (a Python subprocess running the sign-in actions on the same state
directory); the worker is this test's process, holding whatever it held in memory. The emulator's
users: `analyst` holds Defender's View data role, `norole` does not (Defender answers 403).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector import ActionResult, run
from connector.actions import Connector
from connector.auth import forget_process_tokens
from connector.settings import Settings
from connector.stores import SqliteStateStore
from emulator import Emulator

from .helpers import api_requests, lookup, only

DOC_IP = "10.209.67.177"
OTHER_IP = "10.209.67.178"

_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from connector import run
action, params, config, state_dir = sys.argv[1:5]
[result] = run(action, json.loads(params), json.loads(config), state_dir=Path(state_dir))
print(json.dumps(result.to_dict()))
"""


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(device_code_interval_s=1)


def in_another_process(action: str, config: dict[str, Any], state_dir: Path, **params: Any) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _ANOTHER_PROCESS, action, json.dumps(params), json.dumps(config),
                           str(state_dir)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def sign_in_elsewhere(emu: Emulator, config: dict[str, Any], state_dir: Path, user: str) -> None:
    started = in_another_process("start_sign_in", config, state_dir)
    emu.approve_device_code(started["summary"]["user_code"], user)
    done = in_another_process("complete_sign_in", config, state_dir)
    assert done["summary"] == {"state": "signed_in", "user": emu.users[user].upn}, done


def sign_in_here(emu: Emulator, config: dict[str, Any], state_dir: Path, user: str) -> None:
    started = only(run("start_sign_in", {}, config, state_dir=state_dir))
    emu.approve_device_code(started.summary["user_code"], user)
    done = only(run("complete_sign_in", {}, config, state_dir=state_dir))
    assert done.summary["state"] == "signed_in", done


def assert_refused_as(result: ActionResult, emu: Emulator, user: str) -> None:
    assert result.error is not None and result.error.category == "permission", result
    assert result.error.http_status == 403 and emu.users[user].upn in result.message
    assert api_requests(emu)[-1]["detail"] == f"user {emu.users[user].upn} without View data"  # Defender's view


def test_a_sign_in_by_another_process_is_who_the_worker_asks_defender_as(emu: Emulator, tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in_here(emu, config, tmp_path, "analyst")
    assert only(lookup(config, tmp_path, DOC_IP)).status == "success"
    assert api_requests(emu)[-1]["detail"] == f"user {emu.users['analyst'].upn}"

    sign_in_elsewhere(emu, config, tmp_path, "norole")
    assert_refused_as(only(lookup(config, tmp_path, DOC_IP)), emu, "norole")


def test_a_cached_answer_is_only_served_to_the_person_signed_in_now(emu: Emulator, tmp_path: Path) -> None:
    """analyst's answer is in the result cache; norole, signed in by another process, gets no hit from
    it: neither in the worker that cached it nor in a fresh process."""
    config = emu.delegated_config()  # the result cache on
    sign_in_here(emu, config, tmp_path, "analyst")
    assert only(lookup(config, tmp_path, DOC_IP)).cached is False
    assert only(lookup(config, tmp_path, DOC_IP)).cached is True

    sign_in_elsewhere(emu, config, tmp_path, "norole")
    assert_refused_as(only(lookup(config, tmp_path, DOC_IP)), emu, "norole")
    forget_process_tokens()  # a fresh process
    assert_refused_as(only(lookup(config, tmp_path, DOC_IP)), emu, "norole")

    sign_in_elsewhere(emu, config, tmp_path, "analyst")  # analyst again: their own answer is theirs again
    again = only(lookup(config, tmp_path, DOC_IP))
    assert again.status == "success" and again.cached is True


def test_a_sign_out_by_another_process_ends_the_lookups_of_a_running_batch(emu: Emulator, tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in_here(emu, config, tmp_path, "analyst")
    with Connector(Settings.load(config), state_dir=tmp_path) as worker:  # one connector for the whole batch
        [first] = worker.get_ip_statistics({"ip": DOC_IP})
        assert first.status == "success"
        calls = len(api_requests(emu))
        in_another_process("sign_out", config, tmp_path)
        [second] = worker.get_ip_statistics({"ip": OTHER_IP})
    assert second.error is not None and second.error.code == "NotSignedIn", second
    assert len(api_requests(emu)) == calls


def test_a_sign_in_by_another_process_is_who_a_running_batch_asks_defender_as(emu: Emulator,
                                                                             tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in_here(emu, config, tmp_path, "analyst")
    with Connector(Settings.load(config), state_dir=tmp_path) as worker:
        assert worker.get_ip_statistics({"ip": DOC_IP})[0].status == "success"
        sign_in_elsewhere(emu, config, tmp_path, "norole")
        [second] = worker.get_ip_statistics({"ip": OTHER_IP})
    assert_refused_as(second, emu, "norole")


def test_test_connectivity_names_the_person_signed_in_now(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    sign_in_here(emu, config, tmp_path, "analyst")
    before = only(run("test_connectivity", {}, config, state_dir=tmp_path))
    assert before.status == "success" and before.data[0]["user"] == emu.users["analyst"].upn

    sign_in_elsewhere(emu, config, tmp_path, "norole")
    after = only(run("test_connectivity", {}, config, state_dir=tmp_path))
    assert after.data[0]["user"] == emu.users["norole"].upn, after
    assert emu.users["norole"].upn in after.message and emu.users["analyst"].upn not in after.message
    assert after.error is not None and after.error.http_status == 403  # norole has no View data role


def test_an_answer_got_after_the_sign_in_changed_hands_is_not_filed_under_the_previous_person(
        emu: Emulator, tmp_path: Path) -> None:
    """A lookup chose analyst's cache entry, then waited (single flight) while another process signed
    analyst2 in: it asks Defender as analyst2, and that answer must not become analyst's cache hit."""
    config = emu.delegated_config()
    sign_in_here(emu, config, tmp_path, "analyst")
    with Connector(Settings.load(config), state_dir=tmp_path) as probe:
        flight = probe.cache._key("flight", DOC_IP, 720)
    results: list[ActionResult] = []
    with SqliteStateStore(tmp_path / "state.sqlite3") as store, store.lock(flight, 5.0) as held:
        assert held
        worker = threading.Thread(target=lambda: results.extend(lookup(config, tmp_path, DOC_IP)))
        worker.start()
        sign_in_elsewhere(emu, config, tmp_path, "analyst2")
    worker.join(timeout=60)
    assert not worker.is_alive() and results[0].status == "success", results
    assert api_requests(emu)[-1]["detail"] == f"user {emu.users['analyst2'].upn}"

    sign_in_elsewhere(emu, config, tmp_path, "analyst")
    again = only(lookup(config, tmp_path, DOC_IP))
    assert again.status == "success" and again.cached is False
    assert api_requests(emu)[-1]["detail"] == f"user {emu.users['analyst'].upn}"
