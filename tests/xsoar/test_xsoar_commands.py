"""The integration's commands, each run as XSOAR runs it: main() in a fresh process, parameters and
arguments through demistomock, against the HTTPS emulator (real TLS, real MSAL)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from xsoar_helpers import read_context, run_command, xsoar_params

from connector.platforms.xsoar.packtools.integration_yml import CONTEXT_FIELDS
from emulator import Fault
from emulator.testing import JWT_SHAPE

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
