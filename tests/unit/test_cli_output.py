"""The CLI's people-facing output: the progress bar and the table."""

import io

import pytest

from connector.cli import progress_bar, render_table
from connector.errors import InvalidInputError
from connector.results import ActionResult


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_batch_longer_than_a_screenful_gets_a_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINES", "24")
    monkeypatch.setenv("COLUMNS", "80")
    stream = Terminal()
    update, bar = progress_bar(100, stream)
    assert update is not None
    update(50, 100)
    bar.close()
    assert "50/100" in stream.getvalue()


def test_no_bar_for_a_short_batch_or_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINES", "24")
    assert progress_bar(10, Terminal()) == (None, None)
    assert progress_bar(1000, io.StringIO()) == (None, None)


def test_the_table_shows_verdict_and_scope_and_marks_not_seen_and_failures() -> None:
    seen = ActionResult(action="get_ip_statistics", status="success", message="m",
                        parameters={"ip": "10.0.0.1", "lookback_hours": 720},
                        data=[{"ipAddress": "10.0.0.1", "organizationPrevalence": 12, "orgPrevalence": "12",
                               "orgFirstSeen": "2025-01-01T00:00:00.123Z", "orgLastSeen": "2025-01-02T00:00:00Z",
                               "seenInOrg": True, "lookBackHours": 720, "verdict": "common", "ipScope": "private",
                               "ipScopeDetail": None, "firstSeenAgeHours": 900.0, "lastSeenAgeHours": 876.0,
                               "newInWindow": False}])
    rare = seen.replace(parameters={"ip": "8.8.8.8"}, data=[dict(
        seen.data[0], ipAddress="8.8.8.8", organizationPrevalence=2, verdict="rare", ipScope="public",
        firstSeenAgeHours=3.2, newInWindow=True)])
    never = seen.replace(data=[dict(seen.data[0], organizationPrevalence=0, seenInOrg=False, orgFirstSeen=None,
                                    orgLastSeen=None, verdict="not_seen")], cached=True, cache_age_s=42.0)
    failed = ActionResult.failure("get_ip_statistics", {"ip": "x"}, InvalidInputError("'x' is not an IP address"))
    denied = ActionResult.failure("get_ip_statistics", {"ip": "10.9.9.9"}, InvalidInputError("400 from Defender"),
                                  {"ip_scope": "private"})
    lines = render_table([seen, rare, never, failed, denied]).splitlines()
    assert lines[0].split() == ["IP", "VERDICT", "SCOPE", "DEVICES", "FIRST", "SEEN", "LAST", "SEEN", "DETAIL"]
    assert lines[1].split()[:6] == ["10.0.0.1", "common", "private", "12", "2025-01-01", "00:00:00Z"]
    assert lines[2].split()[:4] == ["8.8.8.8", "rare", "public", "2"] and "new: first seen 3 h ago" in lines[2]
    assert "NOT SEEN" in lines[3] and "cached, 42s old" in lines[3]
    assert "FAILED" in lines[4] and "invalid_input: 'x' is not an IP address" in lines[4]
    assert lines[5].split()[:3] == ["10.9.9.9", "FAILED", "private"]
    assert len(lines) == 6  # one row per input item, failures included


def test_connectivity_shows_which_check_failed() -> None:
    from connector.cli import render_connectivity
    from connector.errors import PermissionDeniedError

    checks = {"sign_in": True, "permission": False, "api": False, "login_url": "https://l", "api_url": "https://a",
              "token_audience": "x", "token_roles": []}
    failed = ActionResult.failure("test_connectivity", {}, PermissionDeniedError("no Ip.Read.All")).replace(
        data=[checks])
    lines = render_connectivity(failed).splitlines()
    assert lines[:2] == ["sign-in      ok", "Ip.Read.All  FAILED"]
    assert lines[-1] == "no Ip.Read.All"


def test_the_parser_gives_the_command_about_to_run_its_options_and_still_knows_every_command() -> None:
    from connector.cli import build_parser

    def options(parser: object, command: str) -> set[str]:
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]  # type: ignore[attr-defined]
        return {s for a in sub._actions for s in a.option_strings}

    only_get = build_parser("get-ip-statistics")
    assert "--tenant-id" in options(only_get, "get-ip-statistics")
    assert "--tenant-id" not in options(only_get, "login")  # not built: another command is running
    every = build_parser()
    assert all("--tenant-id" in options(every, name) for name in ("get-ip-statistics", "test-connectivity", "login",
                                                                  "logout"))
    args = only_get.parse_args(["get-ip-statistics", "10.0.0.1", "--tenant-id", "contoso.onmicrosoft.com"])
    assert args.cfg_tenant_id == "contoso.onmicrosoft.com" and args.ips == ["10.0.0.1"]
