"""The app's actions run through the SDK's own runner against the HTTPS emulator (no mocks)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from soar_helpers import SoarRunner
from soar_sdk.shims.phantom.encryption_helper import encryption_helper

from connector.meaning import ip_scope


def test_seen_ip_is_one_successful_result_with_defender_field_names(emu: Any, runner: SoarRunner,
                                                                     asset_file: Path) -> None:
    ip = emu.org.sample_ips(1, seen=True)[0]
    expected = emu.org.stats_detail(ip, 720, None)
    out = runner.run("get-ip-statistics", asset_file, {"ip": ip})
    assert out.returncode == 0, out.stderr
    [result] = out.results
    assert result.success
    assert result.params == {"ip": ip, "lookback_hours": 720}
    [row] = result.data
    assert row["ipAddress"] == ip
    assert row["organizationPrevalence"] == expected.prevalence > 0
    assert row["orgPrevalence"] == str(expected.prevalence)
    assert row["seenInOrg"] is True
    assert row["lookBackHours"] == 720
    assert row["orgFirstSeen"].endswith("Z") and row["orgLastSeen"].endswith("Z")
    assert row["orgFirstSeen"] <= row["orgLastSeen"]
    assert result.summary["organization_prevalence"] == expected.prevalence
    assert result.summary["seen_in_org"] is True
    assert result.summary["error"] is None
    assert ip in result.message and str(expected.prevalence) in result.message


def test_never_seen_ip_is_a_success_saying_not_seen(emu: Any, runner: SoarRunner, asset_file: Path) -> None:
    ip = emu.org.sample_ips(1, seen=False)[0]
    out = runner.run("get-ip-statistics", asset_file, {"ip": ip, "lookback_hours": 48})
    [result] = out.results
    assert result.success
    scope = ip_scope(ip)
    assert result.data == [{"ipAddress": ip, "organizationPrevalence": 0, "orgPrevalence": "0",
                            "orgFirstSeen": None, "orgLastSeen": None, "seenInOrg": False, "lookBackHours": 48,
                            "verdict": "not_seen", "ipScope": scope.scope, "ipScopeDetail": scope.detail,
                            "firstSeenAgeHours": None, "lastSeenAgeHours": None, "newInWindow": False}]
    assert result.summary["seen_in_org"] is False
    assert result.summary["organization_prevalence"] == 0
    assert result.summary["verdict"] == "not_seen" and result.summary["ip_scope"] == scope.scope
    assert "not seen" in result.message


def test_invalid_ip_fails_with_invalid_input_and_sends_nothing(emu: Any, runner: SoarRunner,
                                                             asset_file: Path) -> None:
    before = emu.counters()["api_calls"]
    out = runner.run("get-ip-statistics", asset_file, {"ip": "1.1.1.1/../machines"})
    assert out.returncode == 0, out.stderr
    [result] = out.results
    assert not result.success
    assert result.data == []
    assert result.summary["error"]["category"] == "invalid_input"
    assert "not an IP address" in result.message
    assert emu.counters()["api_calls"] == before


def test_each_ip_is_its_own_result_and_a_bad_one_does_not_stop_the_others(emu: Any, runner: SoarRunner,
                                                                          asset_file: Path) -> None:
    seen = emu.org.sample_ips(2, seen=True)
    unseen = emu.org.sample_ips(1, seen=False)
    ips = [seen[0], "999.1.1.1", unseen[0], seen[1]]
    out = runner.run("get-ip-statistics", asset_file, {"ip": ", ".join(ips), "lookback_hours": 720})
    assert [r.params["ip"] for r in out.results] == ips
    assert [r.status for r in out.results] == ["success", "failed", "success", "success"]
    assert [r.summary["seen_in_org"] for r in out.results] == [True, None, False, True]
    assert out.results[1].summary["error"]["category"] == "invalid_input"


# --- issue 9: the core's judgement, as SOAR action results carry it ------------------------------

def asset_with(emu: Any, tmp_path: Path, name: str, app: str = "reader", **fields: Any) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(emu.connector_config(app=app, auth="secret") | fields), encoding="utf-8")
    return path


def test_the_verdict_follows_the_asset_rare_device_threshold(emu: Any, runner: SoarRunner, tmp_path: Path) -> None:
    """The threshold is asset configuration read by the core; the app keeps none of its own."""
    ip = emu.org.most_popular(1)[0]
    devices = emu.org.stats_detail(ip, 720, None).prevalence
    at = runner.run("get-ip-statistics", asset_with(emu, tmp_path, "at", rare_device_threshold=devices), {"ip": ip})
    below = runner.run("get-ip-statistics", asset_with(emu, tmp_path, "below", rare_device_threshold=devices - 1,
                                                       cache_ttl_s=0), {"ip": ip})
    [rare], [common] = at.results, below.results
    assert (rare.data[0]["verdict"], rare.summary["verdict"]) == ("rare", "rare")
    assert (common.data[0]["verdict"], common.summary["verdict"]) == ("common", "common")
    assert rare.data[0]["ipScope"] == common.summary["ip_scope"] == "private"
    assert "(private) is rare in the organization" in rare.message
    assert "(private) is common in the organization" in common.message


def test_a_seen_ip_carries_its_ages_and_novelty(emu: Any, runner: SoarRunner, asset_file: Path) -> None:
    now = datetime.now(UTC)
    fresh = next(ip for ip in emu.org.data.ips[-3000:]
                 if (s := emu.org.stats_detail(ip, 720, None)).prevalence and now - s.first_seen < timedelta(hours=20))
    old = emu.org.most_popular(1)[0]
    out = runner.run("get-ip-statistics", asset_file, {"ip": f"{fresh}, {old}", "lookback_hours": 720})
    new_row, old_row = (r.data[0] for r in out.results)
    assert new_row["newInWindow"] is True and 0 <= new_row["firstSeenAgeHours"] < 21
    assert old_row["newInWindow"] is False and old_row["firstSeenAgeHours"] > 24
    for row in (new_row, old_row):
        assert 0 <= row["lastSeenAgeHours"] <= row["firstSeenAgeHours"]
    short = runner.run("get-ip-statistics", asset_file, {"ip": fresh, "lookback_hours": 24})
    assert short.results[0].data[0]["newInWindow"] is None  # a 24 h window cannot tell new from old


def test_a_failed_lookup_of_a_valid_address_still_says_its_scope(emu: Any, runner: SoarRunner,
                                                                  tmp_path: Path) -> None:
    out = runner.run("get-ip-statistics", asset_with(emu, tmp_path, "noperm", app="noperm"),
                     {"ip": "192.168.7.20, 8.8.8.8, 10.0.0.256"})
    assert [r.status for r in out.results] == ["failed"] * 3
    assert [r.summary["error"]["category"] for r in out.results] == ["permission", "permission", "invalid_input"]
    assert [r.summary["ip_scope"] for r in out.results] == ["private", "public", None]
    assert all(r.data == [] and r.summary["verdict"] is None for r in out.results)


def test_test_connectivity_succeeds_against_the_emulator(emu: Any, runner: SoarRunner, asset_file: Path) -> None:
    out = runner.run("test-connectivity", asset_file)
    assert out.returncode == 0, out.stderr
    [result] = out.results
    assert result.success, out.stdout
    assert "Connectivity OK" in out.stdout


def test_test_connectivity_fails_with_a_wrong_secret_and_says_so(runner: SoarRunner,
                                                              wrong_secret_asset: Path) -> None:
    out = runner.run("test-connectivity", wrong_secret_asset)
    [result] = out.results
    assert not result.success
    assert "Sign-in failed" in result.message or "sign" in result.message.lower()
    assert "not-the-secret" not in out.stdout + out.stderr


def test_a_second_run_reuses_the_token_from_the_asset_auth_state(emu: Any, runner: SoarRunner,
                                                                 asset_file: Path) -> None:
    first_ip, second_ip = emu.org.sample_ips(2, seen=True)
    client_id = json.loads(asset_file.read_text())["client_id"]

    def token_requests() -> int:
        return int(emu.counters()["per_app"].get(client_id, {}).get("token_requests", 0))

    def api_calls() -> int:
        return int(emu.counters()["api_calls"])

    tokens_before, calls_before = token_requests(), api_calls()
    assert runner.run("get-ip-statistics", asset_file, {"ip": first_ip}).results[0].success
    assert token_requests() == tokens_before + 1
    # A different IP, so the result cache cannot answer: the API is called with the stored token.
    second = runner.run("get-ip-statistics", asset_file, {"ip": second_ip})
    assert second.results[0].success
    assert api_calls() == calls_before + 2
    assert token_requests() == tokens_before + 1


def test_the_msal_token_cache_lives_in_the_asset_auth_state_never_in_clear(emu: Any, runner: SoarRunner,
                                                              asset_file: Path) -> None:
    ip = emu.org.sample_ips(1, seen=True)[0]
    assert runner.run("get-ip-statistics", asset_file, {"ip": ip}).results[0].success
    raw = runner.state_file().read_text(encoding="utf-8")
    state = json.loads(raw)
    assert isinstance(state["auth"], str)  # the SDK stores the auth part encrypted, not as a mapping
    assert '"AccessToken"' not in raw and "secret" not in raw
    auth = json.loads(encryption_helper.decrypt(state["auth"], "1"))
    [key] = [k for k in auth if k.startswith("msal-cache:")]
    value = base64.b64decode(auth[key]["v"])
    assert value.startswith(b"gAAAAA")  # the core's own Fernet layer on top of the SDK's encryption
    assert b"AccessToken" not in value
    assert oct(runner.state_file().stat().st_mode & 0o777) == "0o600"


def test_the_lane_parameter_reaches_the_core_and_the_summary_says_it(emu: Any, runner: SoarRunner,
                                                                    asset_file: Path) -> None:
    """SOAR does not tell an app whether a person or a playbook ran it: the lane is the parameter's,
    automation unless the analyst picks interactive; a value that is no lane sends nothing."""
    first, second, third = emu.org.sample_ips(3, seen=True)
    by_default = runner.run("get-ip-statistics", asset_file, {"ip": first}).results
    by_hand = runner.run("get-ip-statistics", asset_file, {"ip": second, "lane": "interactive"}).results
    calls = emu.counters()["api_calls"]
    wrong = runner.run("get-ip-statistics", asset_file, {"ip": third, "lane": "urgent"}).results
    assert [r.summary["lane"] for r in by_default + by_hand] == ["automation", "interactive"]
    assert [r.success for r in wrong] == [False] and wrong[0].summary["error"]["category"] == "invalid_input"
    assert "interactive" in wrong[0].message
    assert emu.counters()["api_calls"] == calls
