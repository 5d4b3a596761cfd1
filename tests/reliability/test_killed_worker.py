"""Issue 22, case 4: a worker killed with SIGKILL, holding SQLite's write lock or waiting for a slot.

The kernel drops a dead process's file locks, so the other workers go on at once (SQLite's busy
handler looks again within 100 ms); a killed worker's admitted calls stay in the log and count
against the window like any other; a worker killed while it waits for a slot held nothing (the wait
sleeps outside any transaction). Real processes, real signals, lookups against the emulator.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from emulator import Emulator

from .helpers import config_for, finish, lookup_in_process, seen_ips, start_state_worker

GO_ON_WITHIN_S = 1.0
"""The brief's bound: after the kill, the others' lookups end within this (plus their own call)."""


def logged_calls(state: Path) -> int:
    with sqlite3.connect(state / "ratelimit.sqlite3") as conn:
        count = int(conn.execute("SELECT count(*) FROM rate_log").fetchone()[0])
    conn.close()
    return count


@pytest.mark.parametrize("name", ["state.sqlite3", "ratelimit.sqlite3"])
def test_the_others_go_on_within_a_second_when_the_write_lock_holder_is_killed(emulator: Emulator, tmp_path: Path,
                                                                              name: str) -> None:
    state, config = tmp_path / "state", config_for(emulator, rate_limit_time_scale=100.0, cache_ttl_s=600)
    ips = seen_ips(emulator, 4)
    assert lookup_in_process(config, state, ips[:1])["results"][0]["status"] == "success"
    holder = start_state_worker("hold-write-lock", {"state_dir": str(state), "file": name})
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    waiting = [start_state_worker("lookup", {"config": config, "state_dir": str(state), "ips": [ip]})
               for ip in ips[1:]]
    time.sleep(2.5)  # the workers start and block on the lock
    assert all(proc.poll() is None for proc in waiting), "a worker got past a held write lock"
    holder.send_signal(signal.SIGKILL)
    killed_at = time.time()
    holder.wait(timeout=10)
    answers = [finish(proc) for proc in waiting]
    assert [a["results"][0]["status"] for a in answers] == ["success"] * 3, answers
    late = max(answer["ended_at"] for answer in answers) - killed_at
    print(f"\n{name}: the last blocked lookup ended {late:.3f} s after the lock holder was killed")
    assert 0 < late < GO_ON_WITHIN_S


def test_a_killed_workers_admitted_calls_count_and_a_killed_waiter_holds_nothing(emulator: Emulator,
                                                                                  tmp_path: Path) -> None:
    scale = 12.0  # the minute is 5 s (+ 0.25 s margin): long enough to kill a worker while it waits
    state = tmp_path / "state"
    # Lanes off (no interactive reserve): every one of the five calls a minute is the workers' to take.
    config = config_for(emulator, rate_limit_time_scale=scale, rate_limit_per_minute=5, interactive_reserve_percent=0)
    ips = seen_ips(emulator, 2)
    admitted = start_state_worker("admit-and-hang", {"config": config, "state_dir": str(state), "calls": 5})
    assert admitted.stdout is not None and admitted.stdout.readline().strip() == "admitted"
    admitted_at = time.time()
    admitted.send_signal(signal.SIGKILL)  # killed with its five calls in flight
    admitted.wait(timeout=10)
    assert logged_calls(state) == 5  # they stay in the shared log

    waiter = start_state_worker("lookup", {"config": config, "state_dir": str(state), "ips": ips[:1]})
    other = start_state_worker("lookup", {"config": config, "state_dir": str(state), "ips": ips[1:]})
    time.sleep(2.5)  # both are waiting for the window to free a slot
    assert waiter.poll() is None and other.poll() is None
    waiter.send_signal(signal.SIGKILL)
    killed_at = time.time()
    waiter.wait(timeout=10)
    answer = finish(other)
    assert answer["results"][0]["status"] == "success", answer
    window_s = 60.0 / scale
    freed_after = answer["ended_at"] - admitted_at
    print(f"\nthe surviving waiter was admitted {freed_after:.3f} s after the killed worker's 5 calls "
          f"(window {window_s:.2f} s + margin), {answer['ended_at'] - killed_at:.3f} s after the waiter was killed")
    assert freed_after >= window_s  # the killed worker's calls held the window full to its end
    assert answer["ended_at"] - killed_at < window_s + GO_ON_WITHIN_S
    assert logged_calls(state) == 6  # the five killed calls and the survivor's; the killed waiter got none
