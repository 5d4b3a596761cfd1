"""A lookup that waits on others — another worker fetching the same IP (single flight), the shared
pause after a 429 — stops waiting in time for its own call, or fails at once saying when to retry.

It used to wait its whole budget and then send a call with the 0.1 s minimum timeout: the call was
counted by Defender, its answer thrown away at the deadline, and the analyst read a "network" error.
The emulator delays or throttles answers (emulator/faults.py); every worker here is a thread of this
process sharing one state directory, as SOAR workers on one host share it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from connector import ActionResult, run
from connector.retry import call_reserve_s
from emulator import Emulator
from emulator.faults import Fault

from .helpers import ALLOWANCE_S, DOC_IP, api_log, config_for


def lookup(config: dict[str, Any], state: Path) -> ActionResult:
    [result] = run("get_ip_statistics", {"ip": DOC_IP, "lookback_hours": 24}, config, state_dir=state)
    return result


def in_thread(config: dict[str, Any], state: Path, into: dict[str, Any], name: str) -> threading.Thread:
    def work() -> None:
        started = time.monotonic()
        into[name] = lookup(config, state)
        into[f"{name}_s"] = time.monotonic() - started

    thread = threading.Thread(target=work, name=name)
    thread.start()
    return thread


def wait_for_flight_lock(state: Path, timeout_s: float = 10.0) -> None:
    """Until a worker holds a single-flight lock in the shared SQLite store."""
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if (state / "state.sqlite3").exists():
            with sqlite3.connect(state / "state.sqlite3") as conn:
                try:
                    if conn.execute("SELECT 1 FROM locks WHERE name LIKE 'flight:%'").fetchone():
                        return
                except sqlite3.OperationalError:  # the table is not there yet
                    pass
        time.sleep(0.02)
    raise AssertionError("the leader never took the single-flight lock")


def test_a_follower_whose_leader_outlasts_its_budget_still_gets_an_answer_in_time(emulator: Emulator,
                                                                                  tmp_path: Path) -> None:
    """The leader's call is delayed 4 s; the follower has 2 s: it waits for the leader only until its
    own call still fits (1 s), then calls, and is answered within its budget."""
    state = tmp_path / "state"
    emulator.inject_fault(Fault(delay_s=4.0), count=1)  # the first API call only: the leader's
    outcome: dict[str, Any] = {}
    leader = in_thread(config_for(emulator, item_budget_s=20, cache_ttl_s=60), state, outcome, "leader")
    wait_for_flight_lock(state)
    follower_budget = 2.0
    follower = in_thread(config_for(emulator, item_budget_s=follower_budget, cache_ttl_s=60), state, outcome,
                         "follower")
    follower.join(timeout=30)
    leader.join(timeout=30)
    assert not follower.is_alive() and not leader.is_alive()

    answered = outcome["follower"]
    assert answered.status == "success", answered.message
    assert answered.cached is False  # its own call: the leader's answer was not there yet
    assert outcome["follower_s"] <= follower_budget + ALLOWANCE_S
    assert outcome["leader"].status == "success", outcome["leader"].message
    assert len(api_log(emulator)) == 2, "one call each, none thrown away"


def test_a_follower_whose_leader_answers_in_time_makes_no_call(emulator: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "state"
    emulator.inject_fault(Fault(delay_s=0.5), count=1)
    outcome: dict[str, Any] = {}
    leader = in_thread(config_for(emulator, item_budget_s=20, cache_ttl_s=60), state, outcome, "leader")
    wait_for_flight_lock(state)
    follower = in_thread(config_for(emulator, item_budget_s=4, cache_ttl_s=60), state, outcome, "follower")
    follower.join(timeout=30)
    leader.join(timeout=30)
    assert outcome["follower"].status == "success" and outcome["follower"].cached is True
    assert len(api_log(emulator)) == 1


def test_a_shared_pause_that_leaves_no_time_for_the_call_is_refused_at_once(emulator: Emulator,
                                                                            tmp_path: Path) -> None:
    """A 429 with Retry-After: 3 pauses every lookup of the application. One with a 3 s budget would
    reach the end of the pause with no time left for its call: it fails at once, with no call."""
    state = tmp_path / "state"
    emulator.inject_fault(Fault(status=429, headers={"Retry-After": "3"}), count=1)
    throttled = lookup(config_for(emulator, item_budget_s=1), state)
    assert throttled.error is not None and throttled.error.http_status == 429
    calls = len(api_log(emulator))

    budget = 3.0
    started = time.monotonic()
    refused = lookup(config_for(emulator, item_budget_s=budget), state)
    assert refused.error is not None and refused.error.category == "rate_limited", refused
    assert refused.error.retry_after_s is not None and refused.error.retry_after_s > budget - call_reserve_s(30, budget)
    assert len(api_log(emulator)) == calls, "a call was sent with no time left for its answer"
    assert time.monotonic() - started < budget, "it waited instead of failing at once"
