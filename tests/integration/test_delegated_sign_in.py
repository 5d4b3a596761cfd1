"""Delegated access end to end: the sign-in actions and lookups as a signed-in analyst, over real
HTTPS with real MSAL (PublicClientApplication) against the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector import ActionResult, run
from connector.auth import forget_process_tokens
from connector.models import load
from connector.results import ConnectivityResult
from connector.wording import NEUTRAL
from emulator import Emulator

from .helpers import api_requests, lookup, only

DOC_IP = "10.209.67.177"


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(device_code_interval_s=1)


def act(action: str, config: dict[str, Any], state_dir: Path, **params: Any) -> ActionResult:
    return only(run(action, params, config, state_dir=state_dir))


def sign_in(emu: Emulator, config: dict[str, Any], state_dir: Path, user: str = "analyst") -> ActionResult:
    started = act("start_sign_in", config, state_dir)
    assert started.status == "success", started
    emu.approve_device_code(started.summary["user_code"], user)
    done = act("complete_sign_in", config, state_dir)
    assert done.summary == {"state": "signed_in", "user": emu.users[user].upn}, done
    return done


def token_requests(emu: Emulator) -> list[dict[str, Any]]:
    return [e for e in emu.request_log() if e["route"] == "token"]


def test_a_lookup_with_nobody_signed_in_fails_at_once_without_any_request(emu: Emulator, tmp_path: Path) -> None:
    result = only(lookup(emu.delegated_config(), tmp_path, DOC_IP))
    assert result.error is not None and result.error.category == "authentication"
    assert result.error.code == "NotSignedIn"
    assert NEUTRAL["sign_in"] in result.message  # run() without a platform's words: what to do, no command
    assert emu.request_log() == []


def test_start_sign_in_shows_the_url_and_code_in_message_data_and_summary(emu: Emulator, tmp_path: Path) -> None:
    started = act("start_sign_in", emu.delegated_config(), tmp_path)
    (pending,) = emu.pending_device_codes()
    code, uri = pending["user_code"], f"{emu.base_url}/devicelogin"
    assert started.summary == {"state": "pending", "verification_uri": uri, "user_code": code,
                               "expires_at": started.data[0]["expires_at"]}
    assert code in started.message and uri in started.message and NEUTRAL["complete_sign_in"] in started.message
    assert started.data[0]["expires_in_s"] == 900 and code in started.data[0]["message"]
    assert "device_code" not in str(started.to_dict())


def test_complete_sign_in_says_pending_until_the_person_finishes(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    started = act("start_sign_in", config, tmp_path)
    pending = act("complete_sign_in", config, tmp_path)
    assert pending.status == "success" and pending.summary["state"] == "pending"
    assert started.summary["user_code"] in pending.message and NEUTRAL["complete_sign_in"] in pending.message
    emu.approve_device_code(started.summary["user_code"], "analyst")
    done = act("complete_sign_in", config, tmp_path, wait_s=0)
    assert done.summary == {"state": "signed_in", "user": emu.users["analyst"].upn}
    assert done.data[0]["scopes"] == ["Ip.Read.All"]
    assert "Signed in as " + emu.users["analyst"].upn in done.message


def test_complete_sign_in_with_a_wait_polls_until_the_person_approves(make_emulator: Callable[..., Emulator],
                                                                     tmp_path: Path) -> None:
    emu = make_emulator(device_code_interval_s=1, device_auto_approve="analyst2", device_auto_approve_polls=3)
    config = emu.delegated_config()
    act("start_sign_in", config, tmp_path)
    began = time.monotonic()
    done = act("complete_sign_in", config, tmp_path, wait_s=30)
    assert done.summary["user"] == emu.users["analyst2"].upn
    assert 1.5 < time.monotonic() - began < 10  # two intervals of one second, not the 30 s allowed


def test_a_bounded_wait_ends_pending_when_nobody_approves(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    act("start_sign_in", config, tmp_path)
    began = time.monotonic()
    pending = act("complete_sign_in", config, tmp_path, wait_s=2)
    assert pending.summary["state"] == "pending"
    assert 1.5 < time.monotonic() - began < 6


def test_a_signed_in_lookup_runs_as_the_user(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    sign_in(emu, config, tmp_path)
    result = only(lookup(config, tmp_path, DOC_IP))
    assert result.status == "success" and result.data[0]["seenInOrg"] is True
    assert api_requests(emu)[-1]["detail"] == f"user {emu.users['analyst'].upn}"


def test_a_second_process_reuses_the_token_without_a_token_request(emu: Emulator, tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in(emu, config, tmp_path)
    forget_process_tokens()  # a new process: nothing in memory
    before = emu.counters()
    assert only(lookup(config, tmp_path, DOC_IP)).status == "success"
    after = emu.counters()
    assert after["token_requests"] == before["token_requests"]
    assert after["api_calls"] == before["api_calls"] + 1
    assert [e["route"] for e in emu.request_log()[-1:]] == ["api"]  # not even OpenID discovery


def test_an_expired_access_token_is_refreshed_silently(make_emulator: Callable[..., Emulator],
                                                       tmp_path: Path) -> None:
    emu = make_emulator(device_code_interval_s=1, token_lifetime_s=200)  # under MSAL's 5-minute margin
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in(emu, config, tmp_path)
    for round_ in range(2):
        forget_process_tokens()
        assert only(lookup(config, tmp_path, DOC_IP)).status == "success"
        assert token_requests(emu)[-1]["detail"] == f"refresh_token {emu.users['analyst'].upn}", round_
    assert emu.refresh_tokens_issued("analyst") == 3  # sign-in plus one per refresh: each use rotates it


@pytest.mark.parametrize(("code", "words"), [
    (700082, "went unused"),
    (50173, "revoked"),
    (70043, "sign-in frequency"),
    (50076, "multi-factor authentication is now required"),
    (50078, "multi-factor authentication has expired"),
])
def test_a_refused_refresh_fails_at_once_saying_to_sign_in_again(make_emulator: Callable[..., Emulator],
                                                                 tmp_path: Path, code: int, words: str) -> None:
    emu = make_emulator(device_code_interval_s=1, token_lifetime_s=200)
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in(emu, config, tmp_path)
    emu.refuse_refresh("analyst", code)
    forget_process_tokens()
    began = time.monotonic()
    result = only(lookup(config, tmp_path, DOC_IP))
    assert time.monotonic() - began < 3
    assert result.error is not None and result.error.category == "authentication"
    assert result.error.code == f"AADSTS{code}"
    assert words in result.message and emu.users["analyst"].upn in result.message
    assert NEUTRAL["sign_in"] in result.message
    assert api_requests(emu) == []
    # Later lookups fail the same way without asking Entra ID again.
    forget_process_tokens()
    requests_before = len(emu.request_log())
    again = only(lookup(config, tmp_path, "10.209.67.178"))
    assert again.error is not None and again.error.category == "authentication" and words in again.message
    assert len(emu.request_log()) == requests_before


def test_90_days_of_inactivity_ends_the_sign_in(emu: Emulator, tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in(emu, config, tmp_path)
    emu.advance_clock(91 * 86_400)
    forget_process_tokens()
    # MSAL still holds the access token as valid (its clock is real time): the API refuses it (401),
    # the connector drops it, and the refresh that follows is refused for inactivity.
    result = only(lookup(config, tmp_path, DOC_IP))
    assert result.error is not None and result.error.code == "AADSTS700082", result
    assert "90 days" in result.message


def test_signing_in_again_after_a_refusal_works(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = make_emulator(device_code_interval_s=1, token_lifetime_s=200)
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in(emu, config, tmp_path)
    emu.revoke_refresh_tokens("analyst")
    forget_process_tokens()
    assert only(lookup(config, tmp_path, DOC_IP)).status == "failed"
    sign_in(emu, config, tmp_path)
    forget_process_tokens()
    assert only(lookup(config, tmp_path, DOC_IP)).status == "success"


def test_declined_sign_in_is_an_authentication_failure(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    started = act("start_sign_in", config, tmp_path)
    emu.decline_device_code(started.summary["user_code"])
    result = act("complete_sign_in", config, tmp_path)
    assert result.error is not None and result.error.category == "authentication"
    assert "the sign-in was declined" in result.message.lower()


def test_an_expired_code_says_to_run_login_again(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    started = act("start_sign_in", config, tmp_path)
    emu.expire_device_code(started.summary["user_code"])
    result = act("complete_sign_in", config, tmp_path)
    assert result.error is not None and result.error.category == "authentication"
    assert "code expired" in result.message and NEUTRAL["start_sign_in"] in result.message
    again = act("complete_sign_in", config, tmp_path)
    assert again.error is not None and again.error.code == "NoSignInInProgress"


def test_public_client_flows_disabled_is_a_configuration_error_naming_the_switch(emu: Emulator,
                                                                                 tmp_path: Path) -> None:
    emu.set_public_client_flows("delegated", False)
    config = emu.delegated_config()
    act("start_sign_in", config, tmp_path)
    result = act("complete_sign_in", config, tmp_path)
    assert result.error is not None and result.error.category == "configuration"
    assert result.error.code == "AADSTS7000218"
    assert "Allow public client flows" in result.message


def test_conditional_access_blocking_the_device_flow_is_named(emu: Emulator, tmp_path: Path) -> None:
    emu.block_device_flow("analyst")
    config = emu.delegated_config()
    started = act("start_sign_in", config, tmp_path)
    emu.approve_device_code(started.summary["user_code"], "analyst")
    result = act("complete_sign_in", config, tmp_path)
    assert result.error is not None and result.error.category == "authentication"
    assert result.error.code == "AADSTS53003" and "Conditional Access" in result.message


def test_a_user_without_view_data_gets_permission_naming_them_and_the_role(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    sign_in(emu, config, tmp_path, user="norole")
    result = only(lookup(config, tmp_path, DOC_IP))
    assert result.error is not None and result.error.category == "permission"
    assert result.error.http_status == 403
    assert emu.users["norole"].upn in result.message and "View data" in result.message
    assert "application permission" not in result.message


def test_two_users_in_two_state_dirs_never_mix(emu: Emulator, tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "cache_ttl_s": 0}
    sign_in(emu, config, tmp_path / "ada", "analyst")
    sign_in(emu, config, tmp_path / "bea", "analyst2")
    for _ in range(2):
        for folder, user in (("ada", "analyst"), ("bea", "analyst2"), ("ada", "analyst")):
            assert only(lookup(config, tmp_path / folder, DOC_IP)).status == "success"
            assert api_requests(emu)[-1]["detail"] == f"user {emu.users[user].upn}"
        forget_process_tokens()


def test_an_application_token_never_serves_a_delegated_lookup(emu: Emulator, tmp_path: Path) -> None:
    application = {**emu.connector_config(), "cache_ttl_s": 0}
    assert only(lookup(application, tmp_path, DOC_IP)).status == "success"
    delegated = {**emu.delegated_config(), "client_id": application["client_id"], "cache_ttl_s": 0}
    result = only(lookup(delegated, tmp_path, DOC_IP))
    assert result.error is not None and result.error.code == "NotSignedIn"


def test_sign_out_forgets_the_user(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    sign_in(emu, config, tmp_path)
    out = act("sign_out", config, tmp_path)
    assert out.summary == {"state": "signed_out", "user": emu.users["analyst"].upn}
    assert emu.users["analyst"].upn in out.message
    result = only(lookup(config, tmp_path, "10.209.67.178"))
    assert result.error is not None and result.error.code == "NotSignedIn"
    assert act("sign_out", config, tmp_path).summary == {"state": "signed_out"}


def test_test_connectivity_reports_the_user_and_scp(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    sign_in(emu, config, tmp_path)
    result = act("test_connectivity", config, tmp_path)
    assert result.status == "success", result
    assert emu.users["analyst"].upn in result.message and "scp: Ip.Read.All" in result.message
    assert result.summary == {"sign_in": True, "permission": True, "api": True}
    assert result.data[0]["user"] == emu.users["analyst"].upn and result.data[0]["token_scopes"] == ["Ip.Read.All"]
    load(ConnectivityResult, result.to_dict())


def test_test_connectivity_with_nobody_signed_in_says_how_to_sign_in(emu: Emulator, tmp_path: Path) -> None:
    result = act("test_connectivity", emu.delegated_config(), tmp_path)
    assert result.error is not None and result.error.category == "authentication"
    assert NEUTRAL["sign_in"] in result.message


def test_sign_in_actions_refuse_application_mode(emu: Emulator, tmp_path: Path) -> None:
    result = act("start_sign_in", emu.connector_config(), tmp_path)
    assert result.error is not None and result.error.category == "configuration"
    assert "auth_mode delegated" in result.message


def test_a_secret_in_a_delegated_configuration_is_refused_saying_why(emu: Emulator, tmp_path: Path) -> None:
    config = {**emu.delegated_config(), "client_secret": emu.apps["delegated"].client_secret}
    result = act("start_sign_in", config, tmp_path)
    assert result.error is not None and result.error.category == "configuration"
    assert "client_secret" in result.message and "public client" in result.message
    assert emu.apps["delegated"].client_secret not in result.message  # type: ignore[operator]
    assert emu.request_log() == []


def test_delegated_lookups_go_through_the_shared_rate_limit_gate(make_emulator: Callable[..., Emulator],
                                                                 tmp_path: Path) -> None:
    emu = make_emulator(device_code_interval_s=1, rate_limits=((3, 60.0),), time_scale=60)
    config = {**emu.delegated_config(), "cache_ttl_s": 0, "rate_limit_per_minute": 3,
              "rate_limit_time_scale": 60}
    sign_in(emu, config, tmp_path)
    ips = [ip for ip in emu.org.sample_ips(50, seen=True) if ":" not in ip][:7]
    began = time.monotonic()
    results = lookup(config, tmp_path, ips)
    assert [r.status for r in results] == ["success"] * 7
    assert emu.counters()["http_429"] == 0  # the gate held the calls back; Defender never had to
    assert time.monotonic() - began >= 1.5  # 7 calls at 3 per (emulated) minute: two windows of 1 s


def test_complete_sign_in_with_nothing_pending_reports_who_is_signed_in(emu: Emulator, tmp_path: Path) -> None:
    config = emu.delegated_config()
    sign_in(emu, config, tmp_path)
    again = act("complete_sign_in", config, tmp_path)
    assert again.status == "success"
    assert again.summary == {"state": "signed_in", "user": emu.users["analyst"].upn}


def test_two_runs_completing_the_same_sign_in_both_report_it(emu: Emulator, tmp_path: Path) -> None:
    """A person clicks complete sign in twice: the run that loses the race for the code still sees
    the sign-in the other run completed."""
    from connector.actions import Connector
    from connector.settings import Settings

    config = emu.delegated_config()
    started = act("start_sign_in", config, tmp_path)
    emu.approve_device_code(started.summary["user_code"], "analyst")
    with Connector(Settings.load(config), state_dir=tmp_path) as first, \
            Connector(Settings.load(config), state_dir=tmp_path) as second:
        flow_seen_by_second = second.tokens._pending_flow()  # type: ignore[attr-defined]
        assert first.tokens.complete_sign_in(0).state == "signed_in"  # type: ignore[attr-defined]
        second.tokens._pending_flow = lambda: flow_seen_by_second  # type: ignore[attr-defined]
        late = second.tokens.complete_sign_in(0)  # type: ignore[attr-defined]
    assert (late.state, late.user) == ("signed_in", emu.users["analyst"].upn)


def test_cached_answers_belong_to_the_signed_in_person_and_end_with_the_sign_in(emu: Emulator,
                                                                               tmp_path: Path) -> None:
    config = emu.delegated_config()  # the result cache on (its default)
    sign_in(emu, config, tmp_path, "analyst")
    assert only(lookup(config, tmp_path, DOC_IP)).cached is False
    assert only(lookup(config, tmp_path, DOC_IP)).cached is True

    act("sign_out", config, tmp_path)
    forget_process_tokens()
    after = only(lookup(config, tmp_path, DOC_IP))
    assert after.error is not None and after.error.code == "NotSignedIn"  # no answer from the cache

    sign_in(emu, config, tmp_path, "analyst2")
    calls = len(api_requests(emu))
    other = only(lookup(config, tmp_path, DOC_IP))
    assert other.status == "success" and other.cached is False and len(api_requests(emu)) == calls + 1


def test_a_wrong_secret_is_never_answered_from_a_working_secrets_cache(emu: Emulator, tmp_path: Path) -> None:
    config = emu.connector_config(app="reader", auth="secret")
    assert only(lookup(config, tmp_path, DOC_IP)).status == "success"
    assert only(lookup(config, tmp_path, DOC_IP)).cached is True
    wrong = only(lookup({**config, "client_secret": "not-the-secret-" + "x" * 20}, tmp_path, DOC_IP))
    assert wrong.status == "failed" and wrong.error is not None and wrong.error.category == "authentication"


def test_a_platform_key_lets_a_sign_in_outlive_the_state_directory(emu: Emulator, tmp_path: Path) -> None:
    """A platform that runs each action in a fresh container (XSOAR) keeps the installation key in its
    own store: the next container, with an empty state directory, still reads the person's tokens."""
    from connector.state import MemoryStateStore

    platform_store, key = MemoryStateStore(), bytes(range(32))
    config = {**emu.delegated_config(), "cache_ttl_s": 0}

    def container(action: str, name: str, **params: Any) -> ActionResult:
        forget_process_tokens()
        return only(run(action, params, config, store=platform_store, shared_store=platform_store,
                        state_dir=tmp_path / name, installation_key=key))

    started = container("start_sign_in", "c1")
    emu.approve_device_code(started.summary["user_code"], "analyst")
    assert container("complete_sign_in", "c2").summary["state"] == "signed_in"
    looked_up = container("get_ip_statistics", "c3", ip=DOC_IP)
    assert looked_up.status == "success", looked_up.message
    assert not (tmp_path / "c3" / "delegated-cache.key").exists()  # the platform's key, not a local file
