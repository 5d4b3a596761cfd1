"""SQLite's early steal of a lock whose holder is gone trusts a PID only in the process space it was
recorded in: the host name, the boot and the PID namespace.

Containers can share a host name and the state volume but not a PID namespace: a PID recorded there is
no process here (or another one), while its holder lives on. Such a lock must wait for its lease.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from connector.stores import SqliteStateStore, process_space


def a_dead_pid() -> int:
    """The PID of a process that has exited (and been reaped) in this namespace."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    return gone.pid


def recorded(store_path: Path, space: str, pid: int) -> None:
    """A lock row as its holder recorded it, with ten minutes of lease left."""
    store = SqliteStateStore(store_path)
    with store.lock("probe", 1.0):  # creates the table
        pass
    with sqlite3.connect(store_path) as conn:
        conn.execute("INSERT INTO locks (name, owner, host, pid, expires_at) VALUES "
                     "('flight', 'theirs', ?, ?, strftime('%s', 'now') + 600)", (space, pid))


def test_a_lock_recorded_with_the_host_name_alone_waits_for_its_lease(tmp_path: Path) -> None:
    """What an earlier version recorded, in any container of this host name: its PID may be another
    namespace's. (It was stolen at once when that PID was not running here.)"""
    path = tmp_path / "state.sqlite3"
    recorded(path, socket.gethostname(), a_dead_pid())
    with SqliteStateStore(path).lock("flight", 0.3) as held:
        assert not held


def test_a_lock_recorded_in_another_pid_namespace_waits_for_its_lease(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    here = process_space()
    assert "|pid:" in here, "this host has /proc: the process space names the PID namespace"
    elsewhere = here.rsplit("|pid:", 1)[0] + "|pid:1"
    recorded(path, elsewhere, a_dead_pid())
    with SqliteStateStore(path).lock("flight", 0.3) as held:
        assert not held


def test_a_lock_recorded_in_this_process_space_by_a_gone_pid_is_taken_at_once(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    recorded(path, process_space(), a_dead_pid())
    with SqliteStateStore(path).lock("flight", 0.3) as held:
        assert held


def test_the_process_space_names_this_process_pid_namespace() -> None:
    """The namespace is the inode of /proc/self/ns/pid, which differs between PID namespaces."""
    own = Path("/proc/self/ns/pid").stat().st_ino
    assert process_space().endswith(f"|pid:{own}")
    assert process_space().startswith(socket.gethostname() + "|")
