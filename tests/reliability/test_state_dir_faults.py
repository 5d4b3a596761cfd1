"""Issue 22, case 7: a state directory the connector cannot, or must not, write in.

A read-only directory (a read-only mount: root writes through mode bits), a state file of another
user's, and a symlink planted where a state file or one of SQLite's side files goes: each is a
configuration error that names the path, for every item of the batch, and nothing is written through
the link. The lookups run in fresh processes against the emulator.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.delegated import KEY_FILE, installation_key
from connector.errors import ConfigurationError
from emulator import Emulator

from .helpers import config_for, lookup_in_process, seen_ips, tmpfs

NOBODY = 65534


def failed_naming(answer: dict, path: Path) -> None:
    results = answer["results"]
    assert results, answer
    for result in results:
        assert result["status"] == "failed" and result["category"] == "configuration", result
        assert str(path) in result["message"], result["message"]


def test_a_read_only_state_directory_is_a_configuration_error_naming_it(emulator: Emulator,
                                                                        tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", 64, read_only=True) as state:
        answer = lookup_in_process(config_for(emulator), state, seen_ips(emulator, 2))
        failed_naming(answer, state)
        assert list(state.iterdir()) == []


def test_a_state_file_already_there_on_a_read_only_disk_is_named(emulator: Emulator, tmp_path: Path) -> None:
    config, state = config_for(emulator), tmp_path / "state"
    with tmpfs(state, 256):
        assert lookup_in_process(config, state, seen_ips(emulator, 1))["results"][0]["status"] == "success"
        assert os.system(f"mount -o remount,ro {state}") == 0  # noqa: S605 (a fixed command on a test path)
        failed_naming(lookup_in_process(config, state, seen_ips(emulator, 2)), state)


@pytest.mark.parametrize("name", ["state.sqlite3", "ratelimit.sqlite3"])
def test_a_state_file_of_another_user_is_refused_by_name(emulator: Emulator, tmp_path: Path, name: str) -> None:
    config, state = config_for(emulator), tmp_path / "state"
    assert lookup_in_process(config, state, seen_ips(emulator, 1))["results"][0]["status"] == "success"
    os.chown(state / name, NOBODY, NOBODY)
    before = (state / name).read_bytes()
    failed_naming(lookup_in_process(config, state, seen_ips(emulator, 2)), state / name)
    assert (state / name).read_bytes() == before


@pytest.mark.parametrize("name", ["state.sqlite3", "ratelimit.sqlite3", "state.sqlite3-wal", "ratelimit.sqlite3-shm"])
@pytest.mark.parametrize("victim_exists", [True, False])
def test_nothing_is_written_through_a_symlink_planted_where_a_state_file_goes(emulator: Emulator, tmp_path: Path,
                                                                              name: str, victim_exists: bool) -> None:
    state, victim = tmp_path / "state", tmp_path / "victim"
    state.mkdir(mode=0o700)
    if victim_exists:
        victim.write_bytes(b"somebody else's file\n")
    (state / name).symlink_to(victim)
    answer = lookup_in_process(config_for(emulator), state, seen_ips(emulator, 2))
    failed_naming(answer, state / name)
    assert "symbolic link" in answer["results"][0]["message"]
    if victim_exists:
        assert victim.read_bytes() == b"somebody else's file\n"
    else:
        assert not victim.exists()
    assert (state / name).is_symlink()


def test_the_delegated_token_key_is_not_read_through_a_planted_symlink(tmp_path: Path) -> None:
    state, victim = tmp_path / "state", tmp_path / "victim"
    state.mkdir(mode=0o700)
    victim.write_bytes(b"k" * 32)  # a key of the planter's choosing, which the token cache would be sealed with
    (state / KEY_FILE).symlink_to(victim)
    with pytest.raises(ConfigurationError, match="symbolic link") as raised:
        installation_key(state)
    assert str(state / KEY_FILE) in str(raised.value)
