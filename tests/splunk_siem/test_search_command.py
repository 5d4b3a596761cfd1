"""The packaged mdeipstats command, driven as splunkd drives it (protocol v2), against the emulator.

Each test starts the add-on's bin/mdeipstats.py with no arguments under ``python -S`` (only the add-on's
lib/ to import from), a fake splunkd on HTTPS holding the account (its secret in storage/passwords) and
the emulator as Entra ID and Defender.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from pathlib import Path
from typing import Any

from helpers_siem import api_calls, chunks_of, configured_splunkd, events_over, public_ips, token_requests

from conftest import account_values, advanced_values

MDE_FIELDS = {"mde_prevalence", "mde_first_seen", "mde_last_seen", "mde_seen_in_org", "mde_verdict", "mde_ip_scope",
              "mde_new_in_window", "mde_status", "mde_error", "mde_retry_after_s"}
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.")


def _everything_written(tmp_path: Path, *texts: str) -> str:
    """All a search left behind that a person could read: its output, stderr and log files."""
    logs = [p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "log").glob("*")
            if p.is_file()]
    return "\n".join([*texts, *logs])


def test_getinfo_declares_a_stateful_command_so_it_runs_on_the_search_head(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, _):
        run = splunkd.run(["field=dest_ip"], [[]])
    assert run.returncode == 0, run.stderr
    assert run.getinfo["type"] == "stateful"  # distributed=False: never sent to the indexers
    assert run.replies == [{"finished": True}]


def test_ten_thousand_events_over_300_addresses_make_300_calls_and_one_sign_in(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    ips = public_ips(300)
    events = events_over(ips, 10_000)
    emu.reset_observations()
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, state):
        first = splunkd.run(["field=dest_ip", "max_wait_s=60"], chunks_of(events, 1000), sid="s1")
        calls, tokens = api_calls(emu), token_requests(emu)
        second = splunkd.run(["field=dest_ip", "max_wait_s=60"], chunks_of(events, 1000), sid="s2")

    assert first.returncode == 0, first.stderr
    assert len(first.replies) == 11
    assert [e["seq"] for e in first.events] == [str(i) for i in range(10_000)]  # in order, none dropped
    assert {e["mde_status"] for e in first.events} == {"success"}, {e["mde_error"] for e in first.events}
    assert set(first.events[0]) >= MDE_FIELDS
    assert calls == 300 and tokens == 1
    by_ip = {e["dest_ip"]: e for e in first.events}
    assert all(by_ip[e["dest_ip"]]["mde_prevalence"] == e["mde_prevalence"] for e in first.events)
    assert {e["mde_seen_in_org"] for e in first.events} <= {"true", "false"}
    assert {e["mde_verdict"] for e in first.events} <= {"not_seen", "rare", "common"}
    assert {e["mde_ip_scope"] for e in first.events} == {"public"}

    assert second.returncode == 0, second.stderr
    assert api_calls(emu) == calls and token_requests(emu) == tokens  # the shared cache and token cache
    assert {e["mde_status"] for e in second.events} == {"cached"}
    assert [(e["dest_ip"], e["mde_prevalence"]) for e in second.events] == \
           [(e["dest_ip"], e["mde_prevalence"]) for e in first.events]
    assert all(r["authorized"] for r in state.requests)
    print(f"\nMEASURED first search {first.elapsed_s:.2f} s (300 calls), second {second.elapsed_s:.2f} s (cached)")


def test_an_event_without_a_valid_address_passes_through_as_invalid_input_without_a_request(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    good = public_ips(1, start=5000)[0]
    values = ["not-an-ip", "", "10.0.0.0/8", "203.0.113.7:443", "../../api/x", good, "1.2.3.4.5"]
    events = [{"seq": str(i), "dest_ip": v} for i, v in enumerate(values)]
    events.append({"seq": str(len(values)), "other": "no dest_ip field at all"})
    emu.reset_observations()
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, _):
        run = splunkd.run(["field=dest_ip"], chunks_of(events, 3))
    assert run.returncode == 0, run.stderr
    assert [e["seq"] for e in run.events] == [e["seq"] for e in events]
    statuses = {e["seq"]: e["mde_status"] for e in run.events}
    assert statuses.pop(str(values.index(good))) == "success"
    assert set(statuses.values()) == {"invalid_input"}
    assert all(e["mde_error"] for e in run.events if e["mde_status"] == "invalid_input")
    assert api_calls(emu) == 1  # only the valid address reached Defender


def test_a_rate_limit_wait_longer_than_max_wait_s_ends_the_search_on_time_with_rate_limited_rows(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    ips = public_ips(40, start=7000)
    # Five calls a (real, uncompressed) minute: the sixth address would wait a minute for its slot. Lanes off
    # (no reserve, no bulk cap): all five are the search's.
    advanced = advanced_values(emu, rate_limit_per_minute="5", rate_limit_time_scale="1",
                               interactive_reserve_percent="0", bulk_max_percent="100")
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced) as (splunkd, _):
        run = splunkd.run(["field=dest_ip", "max_wait_s=2"], chunks_of(events_over(ips, 400), 100))
    assert run.returncode == 0, run.stderr
    assert len(run.events) == 400
    statuses = [e["mde_status"] for e in run.events]
    assert statuses.count("success") == 5 * 10  # five addresses, ten events each
    limited = [e for e in run.events if e["mde_status"] == "rate_limited"]
    assert len(limited) == 35 * 10
    assert all(float(e["mde_retry_after_s"]) > 2 for e in limited)
    assert "max_wait_s" in limited[0]["mde_error"]
    assert run.elapsed_s < 2 + 8, f"the search took {run.elapsed_s:.1f} s"  # max_wait_s + process start-up
    print(f"\nMEASURED rate-limited search (max_wait_s=2): {run.elapsed_s:.2f} s")


def test_a_429_asking_for_longer_than_max_wait_s_ends_the_search_on_time_with_rate_limited_rows(
        tmp_path: Path, addon_dir: Path, session_key: str) -> None:
    """Another tool spent the application's budget: Defender answers 429 with a minute's Retry-After.
    Every search pauses, and this one, with 3 s to wait at most, answers rate_limited at once."""
    from emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(rate_limits=((3, 60.0),))) as strict:
        with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(strict)},
                                advanced_values(strict)) as (splunkd, _):
            run = splunkd.run(["field=dest_ip", "max_wait_s=3"], chunks_of(events_over(public_ips(12, 30_000), 24), 8))
        throttled = strict.counters()["http_429"]
    assert run.returncode == 0, run.stderr
    statuses = [e["mde_status"] for e in run.events]
    assert statuses.count("success") == 3 * 2 and statuses.count("rate_limited") == 9 * 2
    assert throttled == 1  # the pause after the first 429 is shared: no further call was wasted
    assert all(float(e["mde_retry_after_s"]) > 3 for e in run.events if e["mde_status"] == "rate_limited")
    assert run.elapsed_s < 3 + 8, f"the search took {run.elapsed_s:.1f} s"


def test_nothing_secret_reaches_the_output_stderr_or_the_logs(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    account = account_values(emu)
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account},
                            advanced_values(emu)) as (splunkd, _):
        run = splunkd.run(["field=dest_ip"], chunks_of(events_over(public_ips(5, start=9000), 20), 10))
    assert run.returncode == 0, run.stderr
    written = _everything_written(tmp_path, run.stdout.decode("utf-8", "replace"), run.stderr)
    assert "mdeipstats" in written or (tmp_path / "log").exists()
    for secret in (account["client_secret"], session_key):
        assert secret not in written
    assert not JWT.search(written), "an access token was written out"
    state_files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert state_files  # the shared state is there (token cache encrypted by the core), the secret is not
    assert not any(account["client_secret"].encode() in p.read_bytes() for p in state_files)


def test_a_certificate_account_whose_key_solnlib_split_into_parts_signs_in(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    account = account_values(emu, auth="certificate")
    with configured_splunkd(tmp_path, addon_dir, session_key, {"cert": account},
                            advanced_values(emu)) as (splunkd, state):
        run = splunkd.run(["field=src", "account=cert"], chunks_of(events_over(public_ips(3, 11000), 6, "src"), 6))
    assert len([p for p in state.passwords if "cert" in p["username"]]) > 2  # the PEM needed several parts
    assert {e["mde_status"] for e in run.events} == {"success"}, run.events[0]["mde_error"]
    written = _everything_written(tmp_path, run.stdout.decode("utf-8", "replace"), run.stderr)
    assert "PRIVATE KEY" not in written


def test_with_several_accounts_and_none_chosen_every_event_passes_through_with_the_reason(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    accounts = {"one": account_values(emu), "two": account_values(emu)}
    with configured_splunkd(tmp_path, addon_dir, session_key, accounts, advanced_values(emu)) as (splunkd, _):
        run = splunkd.run(["field=dest_ip"], chunks_of(events_over(public_ips(2), 4), 2))
    assert run.returncode == 0, run.stderr
    assert len(run.events) == 4
    assert {e["mde_status"] for e in run.events} == {"configuration"}
    assert "account=NAME" in run.events[0]["mde_error"]
    assert any("account=NAME" in text for _, text in run.messages)


def test_a_session_that_may_not_read_the_configuration_gets_the_reason_on_every_event(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, _):
        splunkd.session_key = "another-users-session"
        run = splunkd.run(["field=dest_ip"], chunks_of(events_over(public_ips(2), 4), 4))
    assert run.returncode == 0, run.stderr
    assert {e["mde_status"] for e in run.events} == {"configuration"}
    assert "list_storage_passwords" in run.events[0]["mde_error"] or "401" in run.events[0]["mde_error"]


def test_an_unknown_argument_is_refused_before_any_event(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, _):
        run = splunkd.run(["field=dest_ip", "lookback_hours=9000"], [[]])
    errors = [text for level, text in run.messages if level == "ERROR"]
    assert errors and "lookback_hours" in errors[0]
    assert run.returncode != 0


def test_search_heads_of_a_cluster_share_the_cache_through_redis(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str, redis_url: str) -> None:
    """Two search heads (two state directories) with store_backend=redis: what one looked up, the other
    answers from the shared cache, without a call or a sign-in of its own."""
    ips = public_ips(30, start=20_000 + secrets.randbelow(20_000))  # fresh keys in a shared Redis
    advanced = advanced_values(emu, store_backend="redis", store_url=redis_url)
    events = chunks_of(events_over(ips, 90), 45)
    with configured_splunkd(tmp_path / "sh1", addon_dir, session_key, {"main": account_values(emu)},
                            advanced) as (head1, state):
        first = head1.run(["field=dest_ip"], events, sid="sh1")
        calls, tokens = api_calls(emu), token_requests(emu)
        head2 = dataclasses.replace(head1, env={**head1.env, "MDE_IPSTATS_STATE_DIR": str(tmp_path / "sh2-state")})
        second = head2.run(["field=dest_ip"], events, sid="sh2")
    assert {e["mde_status"] for e in first.events} == {"success"}, first.events[0]["mde_error"]
    assert {e["mde_status"] for e in second.events} == {"cached"}
    assert (api_calls(emu), token_requests(emu)) == (calls, tokens)
    assert not (tmp_path / "sh2-state" / "state.sqlite3").exists()  # nothing kept on the search head itself
    assert any("storage/passwords" in r["path"] for r in state.requests)  # store_url came from there


def test_on_a_search_head_state_and_log_live_under_splunk_home(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    home = tmp_path / "splunk"
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, _):
        splunkd.env = {"SPLUNK_HOME": str(home)}  # as splunkd starts it: no test overrides
        run = splunkd.run(["field=dest_ip"], chunks_of(events_over(public_ips(2, 40_000), 4), 4))
    assert {e["mde_status"] for e in run.events} == {"success"}, run.events[0]["mde_error"]
    state = home / "var" / "lib" / "splunk" / "TA-mde-ipstats" / "state"
    assert (state / "state.sqlite3").is_file()
    assert all(p.stat().st_mode & 0o077 == 0 for p in state.iterdir() if p.is_file())  # private to splunk
    log = home / "var" / "log" / "splunk" / "ta_mde_ipstats_mdeipstats.log"
    assert "search done: 2 distinct addresses, 2 lookups" in log.read_text(encoding="utf-8")


def _one_lookup_from_the_search_app(tmp_path: Path, addon_dir: Path, emu: Any, session_key: str,
                                    sharing: str) -> tuple[Any, list[dict[str, Any]]]:
    ip = public_ips(1, start=4000 + len(sharing))[0]
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)}, advanced_values(emu),
                            sharing=sharing, search_app="search") as (splunkd, state):
        run = splunkd.run(["field=dest_ip"], chunks_of(events_over([ip], 1), 10))
    return run, state.requests


def test_the_account_is_read_in_the_add_ons_namespace_when_shared_with_this_app_only(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    """Configuration saved "This app only" (UCC's default): a search from the Search app still finds the
    account, its secret and the settings, because the command asks in TA-mde-ipstats' namespace."""
    run, requests = _one_lookup_from_the_search_app(tmp_path, addon_dir, emu, session_key, "app")
    assert run.returncode == 0, run.stderr
    assert [e["mde_status"] for e in run.events] == ["success"], run.events[0].get("mde_error")
    paths = [r["path"] for r in requests if r["authorized"]]
    assert paths and all(p.startswith("/servicesNS/nobody/TA-mde-ipstats/") for p in paths), paths


def test_the_account_is_read_when_shared_globally_too(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    run, _ = _one_lookup_from_the_search_app(tmp_path, addon_dir, emu, session_key, "global")
    assert run.returncode == 0, run.stderr
    assert [e["mde_status"] for e in run.events] == ["success"], run.events[0].get("mde_error")


def test_the_fake_splunkd_hides_app_only_objects_from_other_apps_namespaces(session_key: str, tmp_path: Path) -> None:
    """What makes the test above honest: asked through the Search app's namespace, a splunkd holding the
    add-on's objects shared "This app only" answers with no account (the issue's "No account is configured")."""
    import ssl
    import urllib.request

    from fake_splunkd import ACCOUNT_CONF, SplunkdState, fake_splunkd

    for sharing, expected in (("app", 0), ("global", 1)):
        state = SplunkdState(session_key=session_key, sharing=sharing)
        state.add_account("main", {"tenant_id": "t", "client_id": "c", "client_secret": "s"})
        (tmp_path / sharing).mkdir()
        with fake_splunkd(state, tmp_path / sharing) as uri:
            context = ssl._create_unverified_context()  # noqa: S323  (a throwaway self-signed splunkd)
            found = {}
            for app in ("search", "TA-mde-ipstats"):
                request = urllib.request.Request(  # noqa: S310  (https to the loopback fake)
                    f"{uri}/servicesNS/nobody/{app}/configs/conf-{ACCOUNT_CONF}",
                    headers={"Authorization": f"Splunk {session_key}"})
                with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310
                    found[app] = answer.read().decode().count("<entry>")
        assert found == {"search": expected, "TA-mde-ipstats": 1}, (sharing, found)


def test_a_search_is_bulk_an_adhoc_one_may_say_interactive_and_a_scheduled_one_stays_bulk(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    """Ten calls a (real) minute: a bulk search may use five (bulk_max_percent 50), a person all ten. Eight
    addresses and one second to wait show which share each search had."""
    advanced = advanced_values(emu, rate_limit_per_minute="10", rate_limit_time_scale="1")
    searches = {
        "default": ([], "1764480000.7"),
        "adhoc_interactive": (["lane=interactive"], "1764480001.8"),
        "scheduled": (["lane=interactive"], "scheduler__admin__search__RMD5a1b2c3d4e5f6_at_1764480000_12"),
        "scheduled_rt": ([], "rt_scheduler__admin__search__RMD5a1b2c3d4e5f6_at_1764480000_13.0"),
    }
    succeeded, warnings = {}, {}
    for n, (name, (args, sid)) in enumerate(searches.items()):
        with configured_splunkd(tmp_path / name, addon_dir, session_key, {"main": account_values(emu)},
                                advanced) as (splunkd, _):
            events = events_over(public_ips(8, start=40_000 + 100 * n), 8)
            run = splunkd.run(["field=dest_ip", "max_wait_s=1", *args], chunks_of(events, 8), sid=sid)
        assert run.returncode == 0, run.stderr
        assert len(run.events) == 8
        assert {e["mde_status"] for e in run.events} <= {"success", "rate_limited"}
        succeeded[name] = sum(e["mde_status"] == "success" for e in run.events)
        warnings[name] = [text for level, text in run.messages if level == "WARN"]
        log = (tmp_path / name / "log" / "ta_mde_ipstats_mdeipstats.log").read_text(encoding="utf-8")
        assert f"lane {'interactive' if name == 'adhoc_interactive' else 'bulk'}" in log
    assert succeeded == {"default": 5, "adhoc_interactive": 8, "scheduled": 5, "scheduled_rt": 5}
    assert any("scheduled search" in text and "lane=interactive" in text for text in warnings["scheduled"])
    assert not warnings["default"] and not warnings["adhoc_interactive"] and not warnings["scheduled_rt"]


def test_a_lane_that_is_not_a_lane_is_refused_before_any_lookup(
        tmp_path: Path, addon_dir: Path, emu: Any, session_key: str) -> None:
    calls = api_calls(emu)
    with configured_splunkd(tmp_path, addon_dir, session_key, {"main": account_values(emu)},
                            advanced_values(emu)) as (splunkd, _):
        run = splunkd.run(["field=dest_ip", "lane=urgent"], chunks_of(events_over(public_ips(2), 2), 2))
    errors = [text for level, text in run.messages if level == "ERROR"]
    assert run.returncode != 0
    assert errors and "lane=urgent" in errors[0]  # splunklib's words for every option (searchbnf lists the lanes)
    assert api_calls(emu) == calls
