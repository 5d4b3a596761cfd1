"""Helpers shared by the add-on's tests: the configured splunkd, events, and what crossed the wire."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fake_splunkd import SplunkdState, fake_splunkd
from scp import Event, Splunkd


@contextmanager
def configured_splunkd(tmp_path: Path, addon_dir: Path, session_key: str, accounts: dict[str, dict[str, Any]],
                       advanced: dict[str, Any], logging_level: str = "DEBUG",
                       proxy: dict[str, Any] | None = None, sharing: str = "app",
                       search_app: str = "search") -> Iterator[tuple[Splunkd, SplunkdState]]:
    """A fake splunkd holding these accounts and settings (shared "This app only" unless sharing="global"),
    and a Splunkd driver pointed at it whose searches run in ``search_app``."""
    state = SplunkdState(session_key=session_key, sharing=sharing)
    for name, values in accounts.items():
        state.add_account(name, values)
    state.set_settings("advanced", advanced)
    state.set_settings("logging", {"loglevel": logging_level})
    state.set_settings("proxy", proxy or {"proxy_enabled": "0"})
    (tmp_path / "certs").mkdir(parents=True, exist_ok=True)
    with fake_splunkd(state, tmp_path / "certs") as uri:
        env = {"MDE_IPSTATS_STATE_DIR": str(tmp_path / "state"), "MDE_IPSTATS_LOG_DIR": str(tmp_path / "log")}
        yield Splunkd(addon_dir, uri, session_key, env, tmp_path, search_app=search_app), state


def events_over(ips: list[str], count: int, field: str = "dest_ip") -> list[Event]:
    """count events cycling through ips, each with its own sequence number (order is checked)."""
    return [{"_raw": f"event {i}", "seq": str(i), field: ips[i % len(ips)]} for i in range(count)]


def chunks_of(events: list[Event], size: int) -> list[list[Event]]:
    """Chunks as splunkd sends them; a last, empty, finished chunk as well."""
    return [events[i:i + size] for i in range(0, len(events), size)] + [[]]


def api_calls(emu: Any) -> int:
    return int(emu.counters()["api_calls"])


def token_requests(emu: Any) -> int:
    return int(emu.counters()["token_requests"])


def public_ips(count: int, start: int = 1) -> list[str]:
    """Distinct public addresses (TEST-NET ranges are 'reserved'; these are ordinary public ones)."""
    return [f"20.{(start + i) // 250 % 250}.{(start + i) % 250}.{7 + (start + i) // 62500}" for i in range(count)]
