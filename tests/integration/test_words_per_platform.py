"""Each platform's words: every message a person reads names the commands of the platform where it
is read, never another's (connector.wording). The tables are read from each adapter's source (an adapter
imports its platform's SDK, which only that platform's environment has); the messages come from the
real core: every error category, and every sign-in state driven over HTTPS with MSAL against the
emulator, rendered through ``run(..., words=table)`` as each adapter calls it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector import ActionResult, run
from connector.auth import forget_process_tokens
from connector.errors import ConnectorError
from connector.results import ActionResult as Result
from connector.wording import (
    HOW_TO_COMPLETE_SIGN_IN,
    HOW_TO_SIGN_IN,
    HOW_TO_START_SIGN_IN,
    KEYS,
    NEUTRAL,
    PLATFORM_NAME,
    WHERE_CONFIGURED,
    check,
    speak_result,
)
from emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS: dict[str, str] = {
    "cli": "connector/cli.py",
    "xsoar": "connector/platforms/xsoar/Integrations/MDEIPStatistics/MDEIPStatistics.py",
    "splunk_soar": "connector/platforms/splunk_soar/src/app.py",
    "cortex": "connector/platforms/cortex/mde_ipstatistics.py",
    "splunk_siem": "connector/platforms/splunk_siem/package/bin/ta_mde_ipstats/search.py",
    "sentinel": "connector/platforms/sentinel/enrich.py",
}
"""Where each platform's table (its module's ``WORDS``) lives, relative to the repository."""

COMMANDS: dict[str, tuple[str, ...]] = {
    "cli": ("mde-ipstats login", "mde-ipstats logout", "--config", "--state-dir"),
    "xsoar": ("!mde-",),
    "splunk_soar": ("start sign in", "complete sign in", "sign out' action"),
    "cortex": (),
    "splunk_siem": ("| mdeipstats",),
    "sentinel": (),
}
"""What names one platform's commands and no other's: a message read elsewhere must not contain it."""


def read_table(source: str) -> dict[str, str]:
    """A module's ``WORDS`` table, read from its source without importing it (an adapter imports its
    platform's SDK, which only that platform's environment has). Entries are strings or names of the
    module's own string constants."""
    import ast

    tree = ast.parse(source)
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                constants[name] = value.value
            elif name == "WORDS" and isinstance(value, ast.Dict):
                return {ast.literal_eval(k): (constants[v.id] if isinstance(v, ast.Name) else ast.literal_eval(v))
                        for k, v in zip(value.keys, value.values, strict=True) if k is not None}
    raise LookupError("no WORDS table in this module")


def foreign_commands(platform: str) -> list[str]:
    """Every other platform's commands: what a message read on ``platform`` must never name."""
    return [command for other, commands in COMMANDS.items() if other != platform for command in commands]


MARKERS = (HOW_TO_SIGN_IN, HOW_TO_START_SIGN_IN, HOW_TO_COMPLETE_SIGN_IN, WHERE_CONFIGURED, PLATFORM_NAME)
TABLES = {platform: read_table((ROOT / path).read_text(encoding="utf-8")) for platform, path in ADAPTERS.items()}
PLATFORMS = sorted(TABLES)


def said(results: list[ActionResult]) -> list[str]:
    return [text for r in results for text in (r.message, r.error.message if r.error else "")]


def assert_spoken_on(platform: str, texts: list[str]) -> None:
    for text in texts:
        assert "\u27e8" not in text, text
        named = [command for command in foreign_commands(platform) if command in text]
        assert not named, f"{platform} shows another platform's command {named}: {text}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_table_is_whole_and_names_only_its_own_commands(platform: str) -> None:
    table = TABLES[platform]
    check(table)
    assert set(table) == set(KEYS)
    assert_spoken_on(platform, list(table.values()))


def test_the_core_names_no_platform_command() -> None:
    """The core's messages say what to do in neutral terms; only the CLI (and its demo) speaks the CLI."""
    everyone = [command for commands in COMMANDS.values() for command in commands]
    for path in (ROOT / "connector").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("connector/platforms/") or relative in ("connector/cli.py", "connector/demo.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        not_read = {id(node.body[0].value) for node in ast.walk(tree)  # docstrings, and the actions' names
                    if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
                    and isinstance(node.body[0], ast.Expr)}
        not_read |= {id(value) for node in ast.walk(tree) if isinstance(node, ast.Dict)
                     for key, value in zip(node.keys, node.values, strict=True)
                     if isinstance(key, ast.Constant) and key.value == "display_name"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in not_read:
                named = [command for command in everyone if command in node.value]
                assert not named, f"{relative}:{node.lineno} names {named}"


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("error", ConnectorError.__subclasses__(), ids=lambda e: e.__name__)
def test_every_error_category_reads_in_the_platform_words(platform: str, error: type[ConnectorError]) -> None:
    advice = " ".join(MARKERS)
    result = Result.failure("get_ip_statistics", {"ip": "192.0.2.1"}, error(f"It failed. To fix: {advice}."))
    spoken = speak_result(result, TABLES[platform])
    assert_spoken_on(platform, said([spoken]))
    assert TABLES[platform]["sign_in"] in spoken.message and TABLES[platform]["configuration"] in spoken.message
    assert spoken.error is not None and spoken.error.category == error.category


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(device_code_interval_s=1, token_lifetime_s=200)  # MSAL refreshes at each lookup


@pytest.mark.parametrize("platform", [*PLATFORMS, None])
def test_every_sign_in_state_reads_in_the_platform_words(emu: Emulator, tmp_path: Path, platform: str | None) -> None:
    words = TABLES[platform] if platform else None
    own = words or NEUTRAL
    config = {**emu.delegated_config(), "cache_ttl_s": 0}

    def act(action: str, **params: Any) -> ActionResult:
        [result] = run(action, params, config, state_dir=tmp_path, words=words)
        return result

    texts: list[str] = []
    signed_out = act("get_ip_statistics", ip="10.209.67.177", lookback_hours=48)
    assert signed_out.error is not None and signed_out.error.code == "NotSignedIn"
    assert own["sign_in"] in signed_out.message
    no_one = act("test_connectivity")
    assert no_one.error is not None and own["sign_in"] in no_one.message
    started = act("start_sign_in")
    assert own["complete_sign_in"] in started.message
    pending = act("complete_sign_in")
    assert pending.summary["state"] == "pending" and own["complete_sign_in"] in pending.message
    emu.expire_device_code(started.summary["user_code"])
    expired = act("complete_sign_in")
    assert expired.error is not None and own["start_sign_in"] in expired.message
    again = act("start_sign_in")
    emu.approve_device_code(again.summary["user_code"], "analyst")
    done = act("complete_sign_in")
    assert done.summary["state"] == "signed_in"
    connected = act("test_connectivity")
    assert connected.status == "success", connected
    emu.refuse_refresh("analyst", 700082)
    forget_process_tokens()
    ended = act("get_ip_statistics", ip="10.209.67.178", lookback_hours=48)
    assert ended.error is not None and ended.error.category == "authentication" and own["sign_in"] in ended.message
    out = act("sign_out")
    texts = said([signed_out, no_one, started, pending, expired, again, done, connected, ended, out])
    assert_spoken_on(platform or "neutral", texts)
    if platform is None:
        assert all(command not in text for text in texts for commands in COMMANDS.values() for command in commands)
