"""Issue 22, case 1: a damaged state file is set aside, a fresh one started, and the lookup goes on.

Each fault is made in the real files of a state directory (random bytes, a truncated file, a
write-ahead log without its database, a file of another schema version); the lookups run in fresh
processes against the emulator, as SOAR action processes do.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator import Emulator

from .helpers import config_for, finish, lookup_in_process, record_issued_tokens, seen_ips, start_state_worker

FILES = ("state.sqlite3", "ratelimit.sqlite3")
TIME_SCALE = 100.0
"""The rate windows run 100 times faster: the lost minute is 0.6 s (plus the 0.25 s real-time margin)."""


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(16384))


def truncated(path: Path) -> None:
    with sqlite3.connect(path) as conn:  # everything into the main file, then cut it after its first page
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("CREATE TABLE IF NOT EXISTS padding (x BLOB)")
        conn.executemany("INSERT INTO padding VALUES (?)", [(os.urandom(2000),) for _ in range(20)])
    conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = path.stat().st_size
    assert size > 8192
    with path.open("r+b") as file:
        file.truncate(4096 + 1000)


def wal_without_its_database(path: Path) -> None:
    """Another database's live write-ahead log, left where path's would be, and path itself gone."""
    other = path.with_name("elsewhere.sqlite3")
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)")
    conn.execute("INSERT INTO kv VALUES ('x', x'00', NULL)")
    wal = Path(f"{other}-wal").read_bytes()
    conn.close()
    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink()
    other.unlink()
    Path(f"{path}-wal").write_bytes(wal)


def another_schema_version(path: Path) -> None:
    path.unlink()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE kv (k TEXT, v TEXT)")
        conn.execute("CREATE TABLE rate_log (gate TEXT, at_ms INTEGER, weight INTEGER)")
        conn.execute("PRAGMA user_version = 7")
    conn.close()


DAMAGE: dict[str, Callable[[Path], None]] = {f.__name__: f for f in (random_bytes, truncated,
                                                                      wal_without_its_database,
                                                                      another_schema_version)}


def set_aside(state: Path, name: str) -> list[Path]:
    return sorted(p for p in state.glob(f"{name}*.corrupt-*"))


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_state_file_is_set_aside_and_the_lookup_goes_on(emulator: Emulator, tmp_path: Path,
                                                                 damage: str, name: str) -> None:
    state = tmp_path / "state"
    config = config_for(emulator, rate_limit_time_scale=TIME_SCALE)
    ip_before, ip_during, ip_after = seen_ips(emulator, 3)
    issued = record_issued_tokens(emulator)
    assert lookup_in_process(config, state, [ip_before])["results"][0]["status"] == "success"
    assert len(issued) == 1

    DAMAGE[damage](state / name)
    during = lookup_in_process(config, state, [ip_during])
    [result] = during["results"]
    print(f"\n{name} {damage}: the lookup that found it took {during['seconds']:.3f} s")
    assert result["status"] == "success", result
    [warning] = result["warnings"]
    assert str(state / name) in warning and "moved aside" in warning
    assert set_aside(state, name), f"nothing of {name} was set aside: {sorted(p.name for p in state.iterdir())}"
    if name == "state.sqlite3":
        assert len(issued) == 2  # the token cache went with the file: a new token
    if name == "ratelimit.sqlite3":
        # The lost minute counts as full: the shortest window's 100 calls, stamped at the reset, and then
        # this lookup's call, admitted one (compressed) window later.
        with sqlite3.connect(state / name) as conn:
            stamps = [row[0] for row in conn.execute("SELECT at_ms FROM rate_log ORDER BY at_ms")]
        conn.close()
        assert len(stamps) == 101
        assert stamps[-1] - stamps[0] >= 60_000 / TIME_SCALE
        assert "lost minute counts as full" in warning

    after = lookup_in_process(config, state, [ip_after])
    assert after["results"][0]["status"] == "success"
    assert after["results"][0]["warnings"] == []  # said once, by the lookup that found it


def test_several_processes_find_the_damage_at_once_and_one_sets_it_aside(emulator: Emulator,
                                                                          tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = config_for(emulator, rate_limit_time_scale=TIME_SCALE)
    ips = seen_ips(emulator, 7)
    assert lookup_in_process(config, state, ips[:1])["results"][0]["status"] == "success"
    for name in FILES:
        random_bytes(state / name)
    start_at = time.time() + 1.5
    procs = [start_state_worker("lookup", {"config": config, "state_dir": str(state), "ips": [ip],
                                           "start_at": start_at}) for ip in ips[1:]]
    answers = [finish(proc) for proc in procs]
    results = [result for answer in answers for result in answer["results"]]
    assert [r["status"] for r in results] == ["success"] * 6, results
    warnings = [w for r in results for w in r["warnings"]]
    for name in FILES:
        main_files = [p for p in set_aside(state, name) if not p.name.endswith(("-wal", "-shm", "-journal"))]
        assert len(main_files) == 1, main_files  # one process moved it; none moved the fresh file after it
        assert sum(str(state / name) in w for w in warnings) == 1, warnings
