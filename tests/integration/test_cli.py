"""The CLI as a user runs it: JSON and table output, exit statuses, configuration precedence."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli import main

DOC_IP = "10.209.67.177"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() configures the root logger as a process would; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def cli(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def config_file(emulator, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(emulator.connector_config(app="reader", auth="secret")))
    return path


def test_json_output_is_one_array_in_input_order(emulator, config_file: Path, tmp_path: Path) -> None:
    never = emulator.org.sample_ips(1, seen=False)[0]
    code, out = cli("get-ip-statistics", never, DOC_IP, "--lookback-hours", "48", "--config", str(config_file),
                    "--state-dir", str(tmp_path / "s"), "--format", "json")
    results = json.loads(out)
    assert code == 0
    assert [r["parameters"]["ip"] for r in results] == [never, DOC_IP]
    assert results[1]["data"][0]["lookBackHours"] == 48 and results[0]["data"][0]["seenInOrg"] is False


def test_any_failure_exits_1_and_the_table_marks_it(emulator, config_file: Path, tmp_path: Path) -> None:
    never = emulator.org.sample_ips(1, seen=False)[0]
    code, out = cli("get-ip-statistics", DOC_IP, never, "not-an-ip", "--config", str(config_file),
                    "--state-dir", str(tmp_path / "s"))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["IP", "VERDICT", "SCOPE", "DEVICES"]
    assert lines[1].split()[1:3] == ["common", "private"]
    assert "NOT SEEN" in lines[2] and "FAILED" in lines[3] and "invalid_input" in lines[3]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as missing:
        cli("get-ip-statistics", DOC_IP, "--config", str(tmp_path / "absent.json"))
    assert missing.value.code == 2
    with pytest.raises(SystemExit) as no_ip:
        cli("get-ip-statistics")
    assert no_ip.value.code == 2


def test_environment_beats_file_and_flags_beat_environment(emulator, config_file: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDE_CLIENT_SECRET", "from-the-environment")
    code, out = cli("get-ip-statistics", DOC_IP, "--config", str(config_file), "--state-dir", str(tmp_path / "s"),
                    "--format", "json")
    assert code == 1 and json.loads(out)[0]["error"]["category"] == "authentication"
    monkeypatch.delenv("MDE_CLIENT_SECRET")
    monkeypatch.setenv("MDE_API_URL", "https://127.0.0.1:9/")
    code, out = cli("get-ip-statistics", DOC_IP, "--config", str(config_file), "--state-dir", str(tmp_path / "s"),
                    "--format", "json", "--api-url", emulator.api_url)
    assert code == 0, out


def test_ips_can_come_from_stdin(emulator, config_file: Path, tmp_path: Path) -> None:
    ips = emulator.org.sample_ips(3, seen=True)
    code, out = cli("get-ip-statistics", "-", "--config", str(config_file), "--state-dir", str(tmp_path / "s"),
                    "--format", "json", stdin="\n".join(ips) + "\n")
    assert code == 0 and [r["parameters"]["ip"] for r in json.loads(out)] == ips


def test_debug_logs_show_requests_but_never_a_secret_or_token(emulator, config_file: Path, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    secret = json.loads(config_file.read_text())["client_secret"]
    code, _ = cli("get-ip-statistics", DOC_IP, "--config", str(config_file), "--state-dir", str(tmp_path / "s"),
                  "--log-level", "debug")
    err = capfd.readouterr().err
    assert code == 0
    assert f"/api/ips/{DOC_IP}/stats" in err and "-> 200" in err
    assert secret not in err and "eyJ" not in err


def test_json_output_carries_verdict_scope_and_novelty_on_the_wire(emulator, config_file: Path,
                                                                   tmp_path: Path) -> None:
    from connector.demo import rare_ip

    never = emulator.org.sample_ips(1, seen=False)[0]
    rare = rare_ip(emulator.org)
    code, out = cli("get-ip-statistics", DOC_IP, rare, never, "--config", str(config_file),
                    "--state-dir", str(tmp_path / "s"), "--format", "json")
    common_result, rare_result, never_result = json.loads(out)
    assert code == 0
    assert [r["data"][0]["verdict"] for r in (common_result, rare_result, never_result)] == ["common", "rare",
                                                                                           "not_seen"]
    assert [r["summary"]["verdict"] for r in (common_result, rare_result, never_result)] == ["common", "rare",
                                                                                           "not_seen"]
    assert common_result["data"][0]["ipScope"] == common_result["summary"]["ip_scope"] == "private"
    rare_data = rare_result["data"][0]
    assert rare_data["organizationPrevalence"] <= 5 and rare_data["firstSeenAgeHours"] >= rare_data["lastSeenAgeHours"]
    assert rare_data["newInWindow"] is (rare_data["firstSeenAgeHours"] <= 24)
    assert rare_result["message"].startswith(f"{rare} (")
    assert " is rare in the organization: seen on " in rare_result["message"]
    assert never_result["data"][0]["firstSeenAgeHours"] is None and never_result["data"][0]["newInWindow"] is False


def test_a_failed_lookup_still_says_the_address_scope(emulator, tmp_path: Path) -> None:
    path = tmp_path / "noperm.json"
    path.write_text(json.dumps(emulator.connector_config(app="noperm", auth="secret")))
    code, out = cli("get-ip-statistics", "10.3.0.1", "--config", str(path), "--state-dir", str(tmp_path / "s"),
                    "--format", "json")
    (result,) = json.loads(out)
    assert code == 1 and result["error"]["category"] == "permission"
    assert result["summary"] == {"ip_scope": "private", "lane": "automation"}  # output to a pipe: automation


def test_the_demo_shows_each_verdict_once_in_words() -> None:
    from connector.demo import run_demo

    out = io.StringIO()
    assert run_demo(out) == 0
    words = out.getvalue().split("In words (each result's message):", 1)[1].split("==", 1)[0]
    assert [line.split(" is ")[1].split(" in the")[0] if " is " in line else "not seen"
            for line in words.strip().splitlines()] == ["common", "rare", "not seen"]
