"""Unit tests of the MDE IP Statistics integration, beside it as in the content repository
(`<Integration>_test.py`, `test_data/`), run in this project's suite (`./run.sh test`).

Each command runs as XSOAR runs it: `main()` in a fresh process, with XSOAR's own CommonServerPython and
demistomock (read from ../shared/vendor/xsoar, or MDE_XSOAR_VENDOR; never copied here), parameters and
arguments through demistomock, the integration context a versioned double that refuses stale writes, and
the HTTPS emulator as Entra ID and Defender (real TLS, real MSAL). The harness that starts those
processes is tests/xsoar/xsoar_helpers.py (put on the path by conftest.py beside this file).

- the commands: test-module, one IP, lists, errors as error entries, the token and answers reused from
  the integration context, the system proxy, no secret anywhere;
- state that outlives XSOAR's one-container-per-command: concurrent commands keep the shared rate limit
  and every cache entry; Redis instead of the context; the context stays small (a cap on cached answers);
- delegated access: !mde-auth-start, !mde-auth-complete, !mde-auth-test, !mde-auth-reset, in the words of
  the Microsoft integrations.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from xsoar_helpers import finish, read_context, run_command, xsoar_params

from connector.platforms.xsoar.packtools.integration_yml import CONTEXT_FIELDS
from emulator import Fault
from emulator.testing import JWT_SHAPE

# --- the commands ----------------------------------------------------------------------------------

MDE_KEY = "MDE.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"
IP_KEY = "IP(val.Address && val.Address == obj.Address)"
DBOT_KEY = ("DBotScore(val.Indicator && val.Indicator == obj.Indicator && val.Vendor == obj.Vendor && "
            "val.Type == obj.Type)")
LEGACY_KEY = "MicrosoftATP.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"


def stored_values(context_file: Path) -> list[bytes]:
    """Every value the integration keeps in the context, decoded (values are base64 in JSON entries)."""
    values = []
    for raw in read_context(context_file).values():
        entry = json.loads(raw)
        values.append(base64.b64decode(entry["v"]) if "v" in entry else raw.encode())
    return values


def api_paths(emu: Any) -> list[str]:
    return [entry["path"] for entry in emu.request_log() if entry["route"] == "api"]


def test_test_module_answers_ok(fresh_emu: Any, context_file: Path) -> None:
    run = run_command("test-module", xsoar_params(fresh_emu), None, context_file)
    assert run.crashed is None
    assert run.entries == ["ok"]


def test_test_module_with_a_wrong_secret_is_an_error_naming_the_secret(fresh_emu: Any, context_file: Path) -> None:
    params = xsoar_params(fresh_emu, credentials={"identifier": "", "password": "not-the-secret"})
    run = run_command("test-module", params, None, context_file)
    [entry] = run.entries
    assert entry["Type"] == 4
    assert "client secret is wrong" in entry["Contents"]
    assert "not-the-secret" not in run.everything()


def test_one_ip_gives_the_statistics_the_indicator_and_a_table(fresh_emu: Any, context_file: Path) -> None:
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    expected = fresh_emu.org.stats_detail(ip, 720, None)
    run = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu), {"ip": ip}, context_file)
    assert run.crashed is None and run.errors == []
    [entry] = run.entries
    [row] = entry["EntryContext"][MDE_KEY]
    assert set(row) == set(CONTEXT_FIELDS)  # exactly the outputs the YAML declares
    assert row["IPAddress"] == ip
    assert row["OrganizationPrevalence"] == expected.prevalence > 0
    assert row["OrgPrevalence"] == str(expected.prevalence)
    assert row["SeenInOrg"] is True and row["LookBackHours"] == 720
    assert row["Verdict"] in ("rare", "common")
    assert row["IPScope"] in ("private", "public")
    assert row["Cached"] is False and row["CacheAgeSeconds"] is None
    assert row["OrgFirstSeen"].endswith("Z") and row["OrgFirstSeen"] <= row["OrgLastSeen"]
    [indicator] = entry["EntryContext"][IP_KEY]
    assert indicator == {"Address": ip, "OrganizationPrevalence": expected.prevalence,
                         "OrganizationFirstSeen": row["OrgFirstSeen"], "OrganizationLastSeen": row["OrgLastSeen"]}
    [score] = entry["EntryContext"][DBOT_KEY]
    assert score["Score"] == 0 and score["Type"] == "ip" and score["Indicator"] == ip
    assert score["Reliability"] == "B - Usually reliable"
    assert LEGACY_KEY not in entry["EntryContext"]  # official_context_paths is off by default
    table = entry["HumanReadable"]
    assert "|IP|Verdict|Scope|Devices|First seen|Last seen|" in table
    assert f"| {ip} | {row['Verdict']} |" in table
    assert api_paths(fresh_emu) == [f"/api/ips/{ip}/stats?lookBackHours=720"]


def test_a_list_answers_the_never_seen_ip_and_fails_only_the_invalid_one_without_a_request(
        fresh_emu: Any, context_file: Path) -> None:
    seen = fresh_emu.org.sample_ips(1, seen=True)[0]
    unseen = fresh_emu.org.sample_ips(1, seen=False)[0]
    invalid = "1.1.1.1/../machines"
    run = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu),
                      {"ip": f"{seen}, {invalid},{unseen}", "lookback_hours": "48"}, context_file)
    note, error = run.entries
    rows = {r["IPAddress"]: r for r in note["EntryContext"][MDE_KEY]}
    assert set(rows) == {seen, unseen}
    assert rows[unseen]["SeenInOrg"] is False and rows[unseen]["OrganizationPrevalence"] == 0
    assert rows[unseen]["Verdict"] == "not_seen" and rows[unseen]["LookBackHours"] == 48
    assert rows[unseen]["OrgFirstSeen"] is None
    for ip in (seen, unseen, invalid):
        assert f"| {ip} |" in note["HumanReadable"]  # no IP disappears from what a person reads
    assert "| error: invalid_input |" in note["HumanReadable"]
    assert error["Type"] == 4
    assert invalid in error["HumanReadable"] and "invalid_input" in error["HumanReadable"]
    assert "What to do:" in error["HumanReadable"]
    assert sorted(api_paths(fresh_emu)) == sorted(f"/api/ips/{ip}/stats?lookBackHours=48" for ip in (seen, unseen))


def test_ips_may_come_as_an_array_argument(fresh_emu: Any, context_file: Path) -> None:
    ips = fresh_emu.org.sample_ips(2, seen=True)
    run = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu), {"ip": ips}, context_file)
    assert [r["IPAddress"] for r in run.entries[0]["EntryContext"][MDE_KEY]] == ips


def test_missing_permission_is_an_error_entry_saying_which_permission(fresh_emu: Any, context_file: Path) -> None:
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    run = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu, app="noperm"), {"ip": ip}, context_file)
    note, error = run.entries
    assert MDE_KEY not in (note.get("EntryContext") or {})
    assert f"| {ip} | error: permission |" in note["HumanReadable"]
    assert error["Type"] == 4
    assert ip in error["HumanReadable"] and "permission" in error["HumanReadable"]
    assert "Ip.Read.All" in error["HumanReadable"]


def test_429_is_an_error_entry_with_retry_after_and_pauses_the_instance(fresh_emu: Any, context_file: Path) -> None:
    first, second = fresh_emu.org.sample_ips(2, seen=True)
    fresh_emu.inject_fault(Fault(route="api", status=429, headers={"Retry-After": "30"}), count=1)
    params = xsoar_params(fresh_emu, item_budget_s="5")
    run = run_command("mde-get-ip-statistics", params, {"ip": f"{first},{second}"}, context_file)
    note, *errors = run.entries
    assert [e["Type"] for e in errors] == [4, 4]
    for ip, error in zip((first, second), errors, strict=True):
        assert ip in error["HumanReadable"] and "rate_limited" in error["HumanReadable"]
        assert "Retry after" in error["HumanReadable"]
        assert f"| {ip} | error: rate_limited |" in note["HumanReadable"]
    assert len(api_paths(fresh_emu)) == 1  # the second IP waited for nobody: the pause is shared

    # The pause lives in the integration context: the next command (a new container) honours it.
    later = run_command("mde-get-ip-statistics", params, {"ip": first}, context_file)
    assert "rate_limited" in later.entries[1]["HumanReadable"]
    assert len(api_paths(fresh_emu)) == 1


PLAYBOOK_TASK = {"context": {"ParentEntry": {"user": "", "entryTask": {
    "playbookName": "Enrich IP", "taskId": "7", "taskName": "MDE IP statistics"}}}}
WAR_ROOM = {"context": {"ParentEntry": {"user": "analyst", "entryTask": None}}}


def test_a_war_room_command_may_use_the_reserve_a_playbook_task_may_not(fresh_emu: Any, context_file: Path) -> None:
    """Ten calls a (real) minute, one of them kept for people (interactive_reserve_percent 10): playbook
    tasks spend nine, and a tenth task is refused at once (its budget is a second). The analyst who types the
    command in the War Room still gets an answer, unless the command itself says lane=automation."""
    ips = fresh_emu.org.sample_ips(12, seen=True)
    params = xsoar_params(fresh_emu, rate_limit_per_minute="10", item_budget_s="1")

    def refused(run: Any) -> bool:
        return [e["Type"] for e in run.entries[1:]] == [4] and "rate_limited" in run.entries[1]["HumanReadable"]

    tasks = run_command("mde-get-ip-statistics", params, {"ip": ",".join(ips[:9])}, context_file,
                        calling_context=PLAYBOOK_TASK)
    assert tasks.errors == [] and len(api_paths(fresh_emu)) == 9
    assert refused(run_command("mde-get-ip-statistics", params, {"ip": ips[9]}, context_file,
                               calling_context=PLAYBOOK_TASK))
    assert refused(run_command("mde-get-ip-statistics", params, {"ip": ips[10], "lane": "automation"},
                               context_file, calling_context=WAR_ROOM))
    analyst = run_command("mde-get-ip-statistics", params, {"ip": ips[11]}, context_file, calling_context=WAR_ROOM)
    assert analyst.errors == [] and len(api_paths(fresh_emu)) == 10
    assert [row["Lane"] for row in tasks.entries[0]["EntryContext"][MDE_KEY]] == ["automation"] * 9
    assert [row["Lane"] for row in analyst.entries[0]["EntryContext"][MDE_KEY]] == ["interactive"]


@pytest.mark.parametrize(("calling_context", "lane"), [
    (PLAYBOOK_TASK, "automation"),
    (WAR_ROOM, "interactive"),
    ({"context": {"ParentEntry": {"user": "analyst", "polling": True}}}, "automation"),  # a scheduled re-run
    ({"context": {"ParentEntry": {"user": "analyst", "entryTask": {"playbookName": "P", "taskId": "3"}}}},
     "automation"),
    ({}, "automation"),
    ({"context": None}, "automation"),
    ({"context": {"ParentEntry": "not an object"}}, "automation"),
])
def test_the_lane_of_a_command_that_does_not_say_is_read_from_who_ran_it(
        integration: Any, calling_context: dict[str, Any], lane: str) -> None:
    assert integration.lane_of_caller(calling_context) == lane


def test_a_second_run_reuses_the_token_from_the_integration_context(fresh_emu: Any, context_file: Path) -> None:
    first, second = fresh_emu.org.sample_ips(2, seen=True)
    params = xsoar_params(fresh_emu)
    run_command("mde-get-ip-statistics", params, {"ip": first}, context_file)
    assert fresh_emu.counters()["token_requests"] == 1
    run = run_command("mde-get-ip-statistics", params, {"ip": second}, context_file)
    assert run.errors == []
    assert fresh_emu.counters()["token_requests"] == 1
    assert len(api_paths(fresh_emu)) == 2


def test_a_repeated_ip_is_answered_from_the_result_cache_in_the_context(fresh_emu: Any, context_file: Path) -> None:
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    params = xsoar_params(fresh_emu)
    run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    run = run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    [row] = run.entries[0]["EntryContext"][MDE_KEY]
    assert row["Cached"] is True and row["CacheAgeSeconds"] >= 0
    assert len(api_paths(fresh_emu)) == 1


def test_official_context_paths_are_written_only_when_asked(fresh_emu: Any, context_file: Path) -> None:
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    unchecked = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu, official_context_paths="false"),
                            {"ip": ip}, context_file)
    assert LEGACY_KEY not in unchecked.entries[0]["EntryContext"]
    run = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu, official_context_paths=True), {"ip": ip},
                      context_file)
    [row] = run.entries[0]["EntryContext"][MDE_KEY]
    assert run.entries[0]["EntryContext"][LEGACY_KEY] == [
        {"IPAddress": ip, "Statistics": {"OrgPrevalence": row["OrgPrevalence"], "OrgFirstSeen": row["OrgFirstSeen"],
                                         "OrgLastSeen": row["OrgLastSeen"]}}]


def test_no_secret_or_token_in_any_entry_log_or_the_context(fresh_emu: Any, context_file: Path) -> None:
    params = xsoar_params(fresh_emu)
    secret = params["credentials"]["password"]
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    runs = [run_command("test-module", params, None, context_file),
            run_command("mde-get-ip-statistics", params, {"ip": f"{ip}, 999.1.1.1"}, context_file)]
    fresh_emu.inject_fault(Fault(route="token", status=500), count=None)
    fresh_emu.revoke_tokens()
    runs.append(run_command("mde-get-ip-statistics", xsoar_params(fresh_emu, item_budget_s="3"), {"ip": "10.0.0.1"},
                            context_file))
    fresh_emu.clear_faults()
    seen = "".join(run.everything() for run in runs)
    assert runs[1].logs, "the runs log something, or this test proves nothing"
    assert secret not in seen
    assert not JWT_SHAPE.search(seen)  # no JWT (access token or assertion) in clear
    stored = stored_values(context_file)
    assert any(b"ipAddress" in value for value in stored), "the context holds the answers, or this proves nothing"
    for value in stored:
        assert secret.encode() not in value
        assert not JWT_SHAPE.search(value.decode("latin-1"))  # the token cache is encrypted at rest


def test_system_proxy_is_used_only_when_the_checkbox_is_on(fresh_emu: Any, context_file: Path) -> None:
    """A dead proxy in the environment: ignored with the checkbox off, used (and failing) with it on."""
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    dead_proxy = {"HTTPS_PROXY": "127.0.0.1:9", "https_proxy": "127.0.0.1:9"}
    off = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu, proxy=False), {"ip": ip}, context_file,
                      env=dead_proxy)
    assert off.errors == []
    on = run_command("mde-get-ip-statistics", xsoar_params(fresh_emu, proxy=True, item_budget_s="3"), {"ip": ip},
                     context_file.with_name("other-instance.json"), env=dead_proxy)
    [error] = on.errors
    assert "network" in error["HumanReadable"] and "proxy" in error["HumanReadable"].lower()


# --- shared state ----------------------------------------------------------------------------------

PER_MINUTE = 5
TIME_SCALE = 60.0
"""A 60 s window lasts 1 s of real time (the gate adds its 0.25 s real-time margin)."""


def result_entries(context_file: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for key, raw in read_context(context_file).items():
        if key.startswith("mde-ipstats/result:"):
            entry = json.loads(base64.b64decode(json.loads(raw)["v"]))
            found[entry["data"]["ipAddress"]] = entry["data"]
    return found


def admissions(context_file: Path) -> list[int]:
    """The rate-limit ledger's stamps across every version the context ever had (the ledger itself
    forgets calls older than its longest window)."""
    stamps: set[int] = set()
    for line in context_file.with_suffix(".history").read_text(encoding="utf-8").splitlines():
        for key, raw in json.loads(line).items():
            if key.startswith("mde-ipstats-rate/"):
                stamps.update(call[0] for call in json.loads(raw)["calls"])  # [time, lane]
    return sorted(stamps)


def test_two_concurrent_commands_keep_the_shared_rate_limit_and_every_cache_entry(
        make_emulator: Any, tmp_path: Path) -> None:
    # The server allows one call more than the gate's budget: it sees calls when they arrive, and on a
    # loaded machine one call may arrive late by more than the gate's 0.25 s margin. Two gates that did
    # not share the ledger would admit 10 a window; the exact proof is the admission log below.
    emu = make_emulator(now=None, time_scale=TIME_SCALE, rate_limits=((PER_MINUTE + 1, 60.0),),
                        token_lifetime_s=3600.0 * TIME_SCALE)
    context_file = tmp_path / "context.json"
    ips = emu.org.sample_ips(12, seen=True)
    params = xsoar_params(emu, rate_limit_per_minute=str(PER_MINUTE), rate_limit_time_scale=str(TIME_SCALE))

    started = [run_command("mde-get-ip-statistics", params, {"ip": ",".join(half)}, context_file, start=True,
                           context_latency_s=0.03)
               for half in (ips[:6], ips[6:])]
    runs = [finish(process, out_file) for process, out_file in started]

    for run in runs:
        assert run.crashed is None and run.errors == [], [e.get("HumanReadable") for e in run.errors]
    counters = emu.counters()
    assert counters["http_429"] == 0
    assert counters["api_calls"] == 12
    assert counters["token_requests"] == 1  # one container signed in, the other waited and reused it
    times = sorted(entry["time"] for entry in emu.request_log() if entry["route"] == "api")
    assert times[-1] - times[0] >= 2 * 60.0 / TIME_SCALE  # 12 calls at 5 a window span at least two windows

    admitted = admissions(context_file)  # every call either gate admitted, from every context version
    assert len(admitted) == 12
    window_ms = (60.0 / TIME_SCALE + 0.25) * 1000  # the gate's window: 1 s plus its 0.25 s margin
    assert all(admitted[i + PER_MINUTE] - admitted[i] >= window_ms for i in range(len(admitted) - PER_MINUTE))
    refused = context_file.with_suffix(".refused")
    assert refused.exists() and int(refused.read_text()) > 0  # the two really wrote over each other's reads

    assert set(result_entries(context_file)) == set(ips)  # no cache entry lost to a concurrent write
    again = run_command("mde-get-ip-statistics", params, {"ip": ",".join(ips)}, context_file)
    rows = again.entries[0]["EntryContext"]["MDE.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"]
    assert [row["Cached"] for row in rows] == [True] * 12
    assert emu.counters()["api_calls"] == 12


@pytest.mark.redis
def test_with_store_backend_redis_tokens_and_answers_live_in_redis_not_the_context(
        fresh_emu: Any, tmp_path: Path, redis_url: str) -> None:
    context_file = tmp_path / "context.json"
    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    params = xsoar_params(fresh_emu, store_backend="redis", store_url={"identifier": "", "password": redis_url})
    first = run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    assert first.errors == [], [e.get("HumanReadable") for e in first.errors]
    tokens = fresh_emu.counters()["token_requests"]
    second = run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    [row] = second.entries[0]["EntryContext"]["MDE.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"]
    assert row["Cached"] is True
    assert fresh_emu.counters()["token_requests"] == tokens  # the token came from Redis
    assert not context_file.exists() or not any(k.startswith("mde-ipstats") for k in read_context(context_file))


# --- delegated access ------------------------------------------------------------------------------

SIGN_IN = "MDE.SignIn"


def delegated_params(emu: Any) -> dict[str, Any]:
    config = emu.delegated_config()
    return {"tenant_id": config["tenant_id"], "client_id": config["client_id"], "auth_mode": "delegated",
            "api_url": config["api_url"], "login_url": config["login_url"], "scope": config["scope"],
            "ca_bundle": Path(config["ca_bundle"]).read_text(encoding="ascii"), "proxy": False}


def sign_in_state(run: Any) -> dict[str, Any]:
    [entry] = run.entries
    assert entry["Type"] != 4, entry.get("HumanReadable")
    return dict(entry["EntryContext"][SIGN_IN])


def test_sign_in_then_lookups_run_as_the_analyst_until_reset(fresh_emu: Any, context_file: Path) -> None:
    params = delegated_params(fresh_emu)
    started = run_command("mde-auth-start", params, None, context_file)
    state = sign_in_state(started)
    assert state["State"] == "pending" and state["UserCode"] and state["VerificationURI"]
    readable = started.entries[0]["HumanReadable"]
    assert state["UserCode"] in readable and "!mde-auth-complete" in readable

    waiting = run_command("mde-auth-complete", params, None, context_file)
    assert sign_in_state(waiting)["State"] == "pending"

    fresh_emu.approve_device_code(state["UserCode"], user="analyst")
    done = run_command("mde-auth-complete", params, {"wait_s": "20"}, context_file)
    signed_in = sign_in_state(done)
    assert signed_in["State"] == "signed_in" and signed_in["User"]

    ip = fresh_emu.org.sample_ips(1, seen=True)[0]
    lookup = run_command("mde-get-ip-statistics", params, {"ip": ip}, context_file)
    assert lookup.errors == [], [e["HumanReadable"] for e in lookup.errors]
    assert [row["IPAddress"] for row in lookup.entries[0]["EntryContext"][MDE_KEY]] == [ip]

    test = run_command("mde-auth-test", params, None, context_file)
    assert test.entries[0]["Type"] != 4 and signed_in["User"] in test.entries[0]["HumanReadable"]

    stored = [base64.b64decode(json.loads(v)["v"]) for v in read_context(context_file).values() if '"v"' in v]
    assert stored, "the context holds the sign-in, or this proves nothing"
    for value in stored:  # the user's tokens (MSAL's AccessToken and RefreshToken sections) are encrypted
        assert not JWT_SHAPE.search(value.decode("latin-1"))
        assert b"RefreshToken" not in value and b"AccessToken" not in value

    reset = run_command("mde-auth-reset", params, None, context_file)
    assert reset.entries[0]["Type"] != 4
    after = run_command("mde-get-ip-statistics", params, {"ip": fresh_emu.org.sample_ips(2, seen=True)[1]},
                        context_file)
    [error] = after.errors
    assert "(authentication)" in error["HumanReadable"]
    assert "What to do: Sign the analyst in (again): run !mde-auth-start" in error["HumanReadable"]


def test_sign_in_commands_in_application_mode_say_what_to_set(fresh_emu: Any, context_file: Path) -> None:
    run = run_command("mde-auth-start", xsoar_params(fresh_emu), None, context_file)
    [error] = run.errors
    assert "mde-auth-start failed" in error["HumanReadable"]
    assert "delegated" in error["HumanReadable"]


def test_test_module_with_delegated_access_says_which_commands_sign_in(fresh_emu: Any, context_file: Path) -> None:
    """As the Microsoft integrations do with a device-code flow: Test cannot sign a person in."""
    run = run_command("test-module", delegated_params(fresh_emu), None, context_file)
    [entry] = run.entries
    assert entry["Type"] == 4
    assert "run `!mde-auth-start` and `!mde-auth-complete` to log in" in entry["Contents"]
    assert "`!mde-auth-test`" in entry["Contents"]
    assert fresh_emu.counters()["token_requests"] == 0  # nothing was tried in the analyst's name


def test_the_sign_in_commands_answer_in_the_microsoft_integrations_words(fresh_emu: Any, context_file: Path) -> None:
    params = delegated_params(fresh_emu)
    started = run_command("mde-auth-start", params, None, context_file)
    state = sign_in_state(started)
    readable = started.entries[0]["HumanReadable"]
    assert readable.startswith("### Authorization instructions\n1. To sign in, use a web browser to open the page ")
    assert f"[{state['VerificationURI']}]({state['VerificationURI']})" in readable
    assert f"and enter the code **{state['UserCode']}** to authenticate." in readable
    assert "2. Run the **!mde-auth-complete** command in the War Room." in readable

    fresh_emu.approve_device_code(state["UserCode"], user="analyst")
    done = run_command("mde-auth-complete", params, {"wait_s": "20"}, context_file)
    assert done.entries[0]["HumanReadable"].startswith("✅ Authorization completed successfully.")
    tested = run_command("mde-auth-test", params, None, context_file)
    assert tested.entries[0]["HumanReadable"].startswith("✅ Success!")
    reset = run_command("mde-auth-reset", params, None, context_file)
    assert reset.entries[0]["HumanReadable"].startswith(
        "Authorization was reset successfully. You can now run **!mde-auth-start** and **!mde-auth-complete**.")


class VersionedMemoryContext:
    """XSOAR's versioned integration context in memory: a write naming a stale version is refused."""

    def __init__(self) -> None:
        self.version = 0
        self.context: dict[str, Any] = {}
        self.largest = 0

    def get(self, refresh: bool = False) -> dict[str, Any]:
        return {"version": self.version, "context": dict(self.context)}  # values are strings: a copy is safe

    def set(self, context: dict[str, Any], version: Any = -1, sync: bool = False) -> None:
        if version != self.version:
            raise ValueError(f"DB version mismatch: wrote {version}, current is {self.version}")
        serialized = json.dumps(context)  # what the server stores, and sends back with every read
        self.largest = max(self.largest, len(serialized))
        self.context, self.version = dict(context), self.version + 1


@pytest.fixture
def integration(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The integration module in this process, on XSOAR's own CommonServerPython and demistomock."""
    from xsoar_helpers import INTEGRATION_DIR, vendor_dir

    for path in (str(vendor_dir()), str(INTEGRATION_DIR)):
        monkeypatch.syspath_prepend(path)
    import demistomock
    import MDEIPStatistics

    memory = VersionedMemoryContext()
    monkeypatch.setattr(demistomock, "demistoVersion", lambda: {"version": "8.9.0", "buildNumber": "123456"})
    monkeypatch.setattr(demistomock, "getIntegrationContextVersioned", memory.get)
    monkeypatch.setattr(demistomock, "setIntegrationContextVersioned", memory.set)
    monkeypatch.setattr(demistomock, "getIntegrationContext", lambda: memory.get()["context"])
    MDEIPStatistics.memory = memory
    return MDEIPStatistics


def test_ten_thousand_lookups_leave_the_integration_context_bounded(fresh_emu: Any, integration: Any) -> None:
    """Each lookup's answer is cached in the context through the core's ResultCache, as a command does; past
    MAX_CACHED_RESULTS the oldest answers go, the newest stay, and other state (a token) is kept."""
    from connector.cache import ResultCache

    [answer] = connector_run_one(fresh_emu)  # a real answer's size, from the emulator
    store = integration.IntegrationContextStore(integration.VersionedContext())
    store.set("token:app", b"an encrypted token cache", ttl_s=None)
    cache = ResultCache(store, ttl_s=900, tenant_id="contoso.example")
    ips = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1, 10_001)]
    for ip in ips:
        cache.put(ip, 720, {**answer, "ipAddress": ip})

    context = integration.memory.context
    results = [k for k in context if k.startswith("mde-ipstats/result:")]
    cap = integration.MAX_CACHED_RESULTS
    assert cap - cap // 10 <= len(results) <= cap
    assert integration.memory.largest < cap * 1500  # bytes: never more than the cap's worth of answers
    assert len(json.dumps(context)) < cap * 1500
    assert all(cache.get(ip, 720) is not None for ip in ips[-(cap - cap // 10):])  # the newest are answered
    assert all(cache.get(ip, 720) is None for ip in ips[:1000])  # the oldest were evicted
    assert store.get("token:app") == b"an encrypted token cache"


def connector_run_one(emu: Any) -> list[dict[str, Any]]:
    import connector

    config = {**emu.connector_config(app="reader", auth="secret"), "store_backend": "memory"}
    [result] = connector.run("get_ip_statistics", {"ip": emu.org.sample_ips(1, seen=True)[0]}, config)
    assert result.succeeded, result.message
    return [dict(result.data[0])]


def test_a_warning_reaches_the_context_and_the_war_room_once(fresh_emu: Any, integration: Any) -> None:
    """What the connector's own state went through (a damaged file set aside...) is said where the analyst
    reads, once per command, and kept in MDE.IPStatistics.Warnings for playbooks."""
    import connector

    config = {**fresh_emu.connector_config(app="reader", auth="secret"), "store_backend": "memory"}
    ips = fresh_emu.org.sample_ips(2, seen=True)
    results = connector.run("get_ip_statistics", {"ip": ips}, config)
    said = "state.sqlite3 was damaged; it was set aside and started afresh"
    results[0] = results[0].replace(warnings=[said])
    results[1] = results[1].replace(warnings=[said])
    [entry] = integration.ip_statistics_entries(results, {})
    assert entry["HumanReadable"].count(said) == 1
    rows = next(v for k, v in entry["EntryContext"].items() if k.startswith("MDE.IPStatistics"))
    assert [row["Warnings"] for row in rows] == [[said], [said]]
    [quiet] = integration.ip_statistics_entries(connector.run("get_ip_statistics", {"ip": ips[0]}, config), {})
    assert "Warnings" not in quiet["HumanReadable"]
