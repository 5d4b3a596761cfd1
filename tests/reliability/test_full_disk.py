"""Issue 22, case 6: the disk holding the state directory fills up (a real tmpfs of 1 MiB, filled).

Lookups go on without caching and say so; the token already cached is neither lost nor damaged (an
SQLite write that finds no room is rolled back whole, never half-written); with room again, the
lookups cache as before and say nothing. Each lookup runs in a fresh process against the emulator.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from connector import run
from emulator import Emulator

from .helpers import Timeline, config_for, lookup_in_process, record_issued_tokens, seen_ips, tmpfs


def fill(directory: Path) -> Path:
    """Write a file into directory until the disk refuses another byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * chunk):
                    pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_costs_the_caching_not_the_lookups_nor_the_token(emulator: Emulator, tmp_path: Path) -> None:
    config = config_for(emulator, cache_ttl_s=600, rate_limit_time_scale=100.0)
    ips = seen_ips(emulator, 6)
    issued = record_issued_tokens(emulator)
    with tmpfs(tmp_path / "state", 1024) as state:
        assert lookup_in_process(config, state, ips[:1])["results"][0]["warnings"] == []
        assert len(issued) == 1
        filler = fill(state)

        during = lookup_in_process(config, state, ips[1:4])["results"]
        assert [r["status"] for r in during] == ["success"] * 3, during
        for result in during:
            assert any(f"{state}" in w and "is full" in w for w in result["warnings"]), result
        uncached = lookup_in_process(config, state, ips[1:2])["results"][0]
        assert uncached["status"] == "success" and not uncached["cached"] and uncached["warnings"], uncached
        tokens_while_full = len(issued)  # each process signs in afresh: it cannot read the cache

        filler.unlink()
        with sqlite3.connect(state / "state.sqlite3") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        after = lookup_in_process(config, state, ips[4:6])["results"]
        assert [(r["status"], r["warnings"]) for r in after] == [("success", [])] * 2
        again = lookup_in_process(config, state, ips[4:5])["results"][0]
        assert again["cached"] and again["warnings"] == []
        assert len(issued) == tokens_while_full  # the token cached before the disk filled is whole and used


def test_a_disk_that_fills_during_a_batch_costs_its_caching_not_its_lookups(emulator: Emulator,
                                                                             tmp_path: Path) -> None:
    """A worker with the files already open when the disk fills: its writes (cache, locks, the rate log)
    find no room and are skipped; its reads and lookups go on."""
    config = config_for(emulator, cache_ttl_s=600, rate_limit_time_scale=100.0)
    ips = seen_ips(emulator, 4)
    with tmpfs(tmp_path / "state", 1024) as state:
        filled: list[Path] = []
        timeline = Timeline(hooks={1: lambda: filled.append(fill(state))})
        results = run("get_ip_statistics", {"ip": ",".join(ips), "lookback_hours": 24}, config, state_dir=state,
                      progress=timeline)
        assert [r.status for r in results] == ["success"] * 4, [r.warnings for r in results]
        assert results[0].warnings == []
        for result in results[1:]:  # the store skipped its writes, and the gate counted calls it could not log
            for name in ("state.sqlite3", "ratelimit.sqlite3"):
                assert any(f"{state / name} is full" in w for w in result.warnings), result.warnings
        filled[0].unlink()
        with sqlite3.connect(state / "state.sqlite3") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
