"""Delegated access on Splunk SOAR (issue 10): the analyst signs in with a device code through two
action runs (start sign in, complete sign in), and lookups then run as that analyst. Each action is
its own process through the SDK's runner against the HTTPS emulator; only the asset's state file
carries the sign-in from one run to the next."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from soar_helpers import RunOutput, SoarResult, SoarRunner
from soar_sdk.shims.phantom.encryption_helper import encryption_helper

from emulator import Emulator, EmulatorConfig

DOC_IP = "10.209.67.177"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """The emulator asks MSAL to poll every second (Entra ID says 5), so waits stay short."""
    with Emulator(EmulatorConfig(device_code_interval_s=1)) as emulator:
        yield emulator


@pytest.fixture
def delegated_asset(emu: Emulator, tmp_path: Path) -> Path:
    """An asset with auth_mode delegated: tenant and client id, no secret (result cache as configured
    by default: the app itself turns it off for delegated lookups)."""
    path = tmp_path / "delegated.json"
    path.write_text(json.dumps(emu.delegated_config()), encoding="utf-8")
    return path


def one(out: RunOutput) -> SoarResult:
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(out.results) == 1, out.stdout[-2000:]
    return out.results[0]


def upn(emu: Emulator, user: str) -> str:
    return str(emu.users[user].upn)


def sign_in(emu: Emulator, runner: SoarRunner, asset: Path, user: str = "analyst") -> SoarResult:
    started = one(runner.run("start-sign-in", asset, {}))
    assert started.success, started.message
    emu.approve_device_code(started.summary["user_code"], user)
    done = one(runner.run("complete-sign-in", asset, {}))
    assert done.success and done.summary["state"] == "signed_in", done.message
    return done


def requests_since(emu: Emulator, count: int) -> list[dict[str, Any]]:
    return emu.request_log()[count:]


def test_start_sign_in_shows_the_url_and_code_in_message_data_and_summary(emu: Emulator, runner: SoarRunner,
                                                                         delegated_asset: Path) -> None:
    result = one(runner.run("start-sign-in", delegated_asset, {}))
    assert result.success
    code = result.summary["user_code"]
    assert code in [p["user_code"] for p in emu.pending_device_codes()]
    uri = f"{emu.base_url}/devicelogin"
    assert result.summary["state"] == "pending" and result.summary["verification_uri"] == uri
    assert code in result.message and uri in result.message and "complete sign in" in result.message
    [row] = result.data
    assert (row["state"], row["user_code"], row["verification_uri"]) == ("pending", code, uri)
    assert row["expires_in_s"] == 900 and row["expires_at"] == result.summary["expires_at"]
    assert result.summary["error"] is None


def test_the_whole_sign_in_then_a_lookup_as_the_analyst(emu: Emulator, runner: SoarRunner,
                                                        delegated_asset: Path) -> None:
    """start sign in -> the person approves -> complete sign in -> get ip statistics with their token."""
    started = one(runner.run("start-sign-in", delegated_asset, {}))
    pending = one(runner.run("complete-sign-in", delegated_asset, {}))
    assert pending.success and pending.summary["state"] == "pending"  # a success: not finished yet
    assert started.summary["user_code"] in pending.message and "run the 'complete sign in' action" in pending.message
    assert pending.params == {"wait_s": 0}

    emu.approve_device_code(started.summary["user_code"], "analyst")
    done = one(runner.run("complete-sign-in", delegated_asset, {"wait_s": 0}))
    assert done.success
    assert done.summary["state"] == "signed_in" and done.summary["user"] == upn(emu, "analyst")
    assert done.data[0]["scopes"] == ["Ip.Read.All"]
    assert f"Signed in as {upn(emu, 'analyst')}" in done.message

    # A fresh process: the token comes from the asset's auth state, so the only request is the API call.
    before = len(emu.request_log())
    lookup = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert lookup.success and lookup.data[0]["seenInOrg"] is True
    [api_call] = requests_since(emu, before)
    assert api_call["route"] == "api" and api_call["status"] == 200
    assert api_call["detail"] == f"user {upn(emu, 'analyst')}"  # a delegated token (scp) for this person
    assert api_call["client_id"] == emu.delegated_config()["client_id"]


def test_test_connectivity_names_the_signed_in_analyst_and_the_scope(emu: Emulator, runner: SoarRunner,
                                                                   delegated_asset: Path) -> None:
    sign_in(emu, runner, delegated_asset, "analyst2")
    out = runner.run("test-connectivity", delegated_asset)
    assert one(out).success, out.stdout[-2000:]
    assert f"signed in as {upn(emu, 'analyst2')} (delegated, scp: Ip.Read.All)" in out.stdout


def test_test_connectivity_with_nobody_signed_in_says_how_to_sign_in(runner: SoarRunner,
                                                                   delegated_asset: Path) -> None:
    result = one(runner.run("test-connectivity", delegated_asset))
    assert not result.success
    assert "Not signed in" in result.message and "start sign in" in result.message


def test_a_bounded_wait_polls_until_the_analyst_approves(emu: Emulator, runner: SoarRunner,
                                                         delegated_asset: Path) -> None:
    one(runner.run("start-sign-in", delegated_asset, {}))
    emu.set_device_auto_approve("analyst", after_polls=3)
    try:
        began = time.monotonic()
        done = one(runner.run("complete-sign-in", delegated_asset, {"wait_s": 60}))
        elapsed = time.monotonic() - began
    finally:
        emu.set_device_auto_approve(None)
    assert done.success and done.summary["user"] == upn(emu, "analyst")
    assert done.params == {"wait_s": 60}
    assert elapsed < 20  # three polls a second apart (plus the process start), not the 60 s allowed


def test_a_bounded_wait_that_nobody_answers_ends_pending(runner: SoarRunner, delegated_asset: Path) -> None:
    one(runner.run("start-sign-in", delegated_asset, {}))
    began = time.monotonic()
    pending = one(runner.run("complete-sign-in", delegated_asset, {"wait_s": 3}))
    elapsed = time.monotonic() - began
    assert pending.success and pending.summary["state"] == "pending"
    assert 3 <= elapsed < 20


def test_a_declined_code_is_a_failed_authentication(emu: Emulator, runner: SoarRunner,
                                                   delegated_asset: Path) -> None:
    started = one(runner.run("start-sign-in", delegated_asset, {}))
    emu.decline_device_code(started.summary["user_code"])
    result = one(runner.run("complete-sign-in", delegated_asset, {}))
    assert not result.success
    assert result.summary["error"]["category"] == "authentication"
    assert "the sign-in was declined" in result.message.lower()
    assert result.data == [] and result.summary["state"] is None


def test_complete_sign_in_without_start_says_to_start(runner: SoarRunner, delegated_asset: Path) -> None:
    result = one(runner.run("complete-sign-in", delegated_asset, {}))
    assert not result.success
    assert result.summary["error"]["code"] == "NoSignInInProgress" and "start sign in" in result.message


def test_a_lookup_with_nobody_signed_in_fails_at_once_saying_how_to_sign_in(emu: Emulator, runner: SoarRunner,
                                                                           delegated_asset: Path) -> None:
    before = len(emu.request_log())
    result = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert not result.success
    error = result.summary["error"]
    assert (error["category"], error["code"]) == ("authentication", "NotSignedIn")
    assert "start sign in" in result.message and "complete sign in" in result.message
    assert requests_since(emu, before) == []  # nothing was sent: not to Entra ID, not to Defender


def test_no_answer_cached_for_another_identity_serves_a_delegated_lookup(emu: Emulator, runner: SoarRunner,
                                                                        asset_file: Path,
                                                                        delegated_asset: Path) -> None:
    """The app's result cache is shared by its assets: an application asset's answer must not answer
    a delegated lookup (nobody signed in here), nor an analyst's answer a later one after sign out."""
    cached = one(runner.run("get-ip-statistics", asset_file, {"ip": DOC_IP}))
    assert cached.success and one(runner.run("get-ip-statistics", asset_file, {"ip": DOC_IP})).summary["cached"]
    result = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert not result.success and result.summary["error"]["code"] == "NotSignedIn"

    sign_in(emu, runner, delegated_asset)
    before = len(emu.request_log())
    answered = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert answered.success and answered.summary["cached"] is False  # not the application's answer
    assert [e["detail"] for e in requests_since(emu, before)] == [f"user {upn(emu, 'analyst')}"]
    again = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert again.success and again.summary["cached"] is True  # the analyst's own answer
    one(runner.run("sign-out", delegated_asset, {}))
    after = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert not after.success and after.summary["error"]["code"] == "NotSignedIn"


def test_an_analyst_without_view_data_gets_permission_naming_them(emu: Emulator, runner: SoarRunner,
                                                                 delegated_asset: Path) -> None:
    sign_in(emu, runner, delegated_asset, "norole")
    result = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert not result.success
    assert result.summary["error"]["category"] == "permission" and result.summary["error"]["http_status"] == 403
    assert upn(emu, "norole") in result.message and "View data" in result.message


def test_sign_out_then_a_lookup_fails_as_not_signed_in(emu: Emulator, runner: SoarRunner,
                                                       delegated_asset: Path) -> None:
    sign_in(emu, runner, delegated_asset)
    assert one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP})).success
    out = one(runner.run("sign-out", delegated_asset, {}))
    assert out.success and out.summary["state"] == "signed_out" and out.summary["user"] == upn(emu, "analyst")
    assert upn(emu, "analyst") in out.message
    before = len(emu.request_log())
    result = one(runner.run("get-ip-statistics", delegated_asset, {"ip": DOC_IP}))
    assert not result.success and result.summary["error"]["code"] == "NotSignedIn"
    assert requests_since(emu, before) == []
    again = one(runner.run("sign-out", delegated_asset, {}))
    assert again.success and again.summary["user"] is None and "Nobody was signed in" in again.message


def test_the_sign_in_lives_in_the_asset_auth_state_encrypted_twice(emu: Emulator, runner: SoarRunner,
                                                                   delegated_asset: Path) -> None:
    """The pending flow and then the analyst's tokens (refresh token included) are in the asset's
    auth state, which the SDK encrypts, and the core encrypts its values again; no secret Entra ID
    issued appears in the state file or in anything the runs printed."""
    printed: list[str] = []
    started = runner.run("start-sign-in", delegated_asset, {})
    printed += [started.stdout, started.stderr]
    flow_state = json.loads(encryption_helper.decrypt(json.loads(runner.state_file().read_text())["auth"], "1"))
    [flow_key] = [k for k in flow_state if k.startswith("device-flow:")]
    assert base64.b64decode(flow_state[flow_key]["v"]).startswith(b"gAAAAA")  # Fernet

    emu.approve_device_code(one(started).summary["user_code"], "analyst")
    for action, params in (("complete-sign-in", {}), ("get-ip-statistics", {"ip": DOC_IP})):
        out = runner.run(action, delegated_asset, params)
        assert one(out).success
        printed += [out.stdout, out.stderr]
    raw = runner.state_file().read_text(encoding="utf-8")
    auth = json.loads(encryption_helper.decrypt(json.loads(raw)["auth"], "1"))
    assert not [k for k in auth if k.startswith("device-flow:")]  # the finished flow is gone
    [cache_key] = [k for k in auth if k.startswith("msal-delegated")]
    value = base64.b64decode(auth[cache_key]["v"])
    assert value.startswith(b"gAAAAA") and b"RefreshToken" not in value
    secrets = emu.issued_delegated_secrets()
    assert secrets["refresh token"] and secrets["device code"]
    decrypted = json.dumps(auth)
    for kind, values in secrets.items():
        for secret in values:
            for text in (raw, decrypted, *printed):
                assert secret not in text, kind
    assert oct(runner.state_file().stat().st_mode & 0o777) == "0o600"


def test_a_lookup_with_a_valid_token_leaves_the_asset_state_untouched(emu: Emulator, runner: SoarRunner,
                                                                     delegated_asset: Path) -> None:
    """Runs that only read the sign-in write nothing, so one overlapping a sign-in cannot undo it."""
    sign_in(emu, runner, delegated_asset)
    before = runner.state_file().read_bytes(), runner.state_file().stat().st_mtime_ns
    for ip in (DOC_IP, "10.209.67.178"):
        assert one(runner.run("get-ip-statistics", delegated_asset, {"ip": ip})).success
    assert (runner.state_file().read_bytes(), runner.state_file().stat().st_mtime_ns) == before


def test_an_expired_access_token_is_refreshed_in_a_later_run_and_the_end_of_the_sign_in_is_kept(
        tmp_path: Path) -> None:
    """Tokens of 200 s (under MSAL's 5-minute margin): every lookup run refreshes with the refresh
    token the previous run saved in the asset state, with no other request; after 91 days without use
    the refresh is refused, the lookup says to sign in again, and later runs fail without asking."""
    with Emulator(EmulatorConfig(device_code_interval_s=1, token_lifetime_s=200)) as short:
        runner = SoarRunner(state_dir=tmp_path / "soar-state", work_dir=tmp_path)
        asset = tmp_path / "short.json"
        asset.write_text(json.dumps(short.delegated_config()), encoding="utf-8")
        sign_in(short, runner, asset)
        for ip in (DOC_IP, "10.209.67.178"):
            before = len(short.request_log())
            assert one(runner.run("get-ip-statistics", asset, {"ip": ip})).success
            assert [(e["route"], e["detail"]) for e in requests_since(short, before)] == [
                ("discovery", None), ("token", f"refresh_token {upn(short, 'analyst')}"),
                ("api", f"user {upn(short, 'analyst')}")]
        assert short.refresh_tokens_issued("analyst") == 3  # the sign-in's, then one per refresh (rotated)

        short.advance_clock(91 * 86_400)
        # An address not in the result cache: a lookup that needs the API needs the (refused) refresh.
        ended = one(runner.run("get-ip-statistics", asset, {"ip": "10.209.67.180"}))
        assert not ended.success and ended.summary["error"]["code"] == "AADSTS700082"
        assert ended.summary["error"]["category"] == "authentication"
        assert "90 days" in ended.message and "start sign in" in ended.message
        before = len(short.request_log())
        again = one(runner.run("get-ip-statistics", asset, {"ip": "10.209.67.179"}))
        assert not again.success and "90 days" in again.message
        assert requests_since(short, before) == []


def test_an_application_asset_has_no_use_for_the_sign_in_actions(runner: SoarRunner, asset_file: Path) -> None:
    result = one(runner.run("start-sign-in", asset_file, {}))
    assert not result.success and result.summary["error"]["category"] == "configuration"
    assert "auth_mode" in result.message
