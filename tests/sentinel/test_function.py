"""The Function as the Functions host calls it (func.HttpRequest into the decorated function), against the
emulator: Defender over TLS, the host's identity endpoint over loopback HTTP, real MSAL in between."""

from __future__ import annotations

import json
import logging
import re

import pytest

from connector.auth import forget_process_tokens
from connector.platforms.sentinel.function_app import app
from emulator import Emulator, Fault
from emulator.testing import JWT_SHAPE

from .helpers import app_settings, call, verdicts


def api_calls(emu: Emulator) -> list[dict[str, object]]:
    return [entry for entry in emu.request_log() if entry["route"] == "api"]


def test_the_host_indexes_one_post_route_behind_a_function_key() -> None:
    [function] = app.get_functions()
    binding = json.loads(function.get_function_json())["bindings"][0]
    assert function.get_function_name() == "ipstats"
    assert (binding["type"], binding["route"], binding["methods"], binding["authLevel"]) == (
        "httpTrigger", "ipstats", ["POST"], "FUNCTION")


def test_a_list_of_ips_is_one_lookup_each_with_the_comment_and_the_tags(function_app: Emulator) -> None:
    rare = next(ip for ip in reversed(function_app.org.data.ips) if 1 <= function_app.org.stats(ip)[0] <= 5)
    never = function_app.org.sample_ips(1, seen=False)[0]
    status, document = call({"ips": ["10.209.67.177", rare, never], "lookback_hours": 720})
    assert status == 200
    assert verdicts(document) == {"10.209.67.177": "common", rare: "rare", never: "not_seen"}
    assert document["incident_tags"] == ["mde-not-seen", "mde-rare"]
    assert len(api_calls(function_app)) == 3
    comment = document["comment_html"]
    for ip in ("10.209.67.177", rare, never):
        assert f"<td>{ip}</td>" in comment
    # the most telling rows first: not seen, rare, then common
    assert comment.index(never) < comment.index(rare) < comment.index("10.209.67.177")
    assert "of 3 addresses in the last 720 hours (1 not seen, 1 rare, 1 common)" in comment


def test_the_entities_shape_with_ipv6_and_ports_is_read_and_an_empty_list_is_an_answer(function_app: Emulator) -> None:
    status, document = call({"IPs": [{"Address": "[2001:db8::1]:443"}, {"Address": "10.209.67.177:8080"},
                                      {"Address": "2001:DB8:0::2"}, {"Address": "10.209.67.177"}]})
    assert status == 200
    assert verdicts(document) == {"2001:db8::1": "not_seen", "10.209.67.177": "common", "2001:db8::2": "not_seen"}
    assert [r["parameters"]["lookback_hours"] for r in document["results"]] == [720, 720, 720]
    status, document = call({"IPs": []})
    assert status == 200
    assert document["results"] == [] and document["incident_tags"] == []
    assert "no IP address to look up" in document["comment_html"]
    assert len(api_calls(function_app)) == 3  # four entities, three addresses: the one with a port asked once


def test_an_invalid_item_is_one_failed_result_and_reaches_no_api(function_app: Emulator) -> None:
    status, document = call({"IPs": [{"Address": "10.209.67.177"}, {"Address": "1.1.1.1/../machines"},
                                     {"Address": "1.2.3.4:99999"}, {"Address": None}, {"Name": "no address"}],
                             "lookback_hours": 48})
    assert status == 200
    results = document["results"]
    assert [r["status"] for r in results] == ["success", "failed", "failed", "failed", "failed"]
    assert {r["error"]["category"] for r in results[1:]} == {"invalid_input"}
    assert len(api_calls(function_app)) == 1
    assert "FAILED" in document["comment_html"] and "1.1.1.1/../machines" in document["comment_html"]


def test_a_playbook_runs_in_the_automation_lane_unless_its_body_names_another(function_app: Emulator) -> None:
    ips = function_app.org.sample_ips(3, seen=True)
    _, by_default = call({"ips": ips[:1]})
    _, on_demand = call({"ips": ips[1:2], "lane": "interactive"})
    status, wrong = call({"ips": ips[2:], "lane": "urgent"})
    assert by_default["results"][0]["summary"]["lane"] == "automation"
    assert on_demand["results"][0]["summary"]["lane"] == "interactive"
    assert status == 200 and wrong["results"][0]["error"]["category"] == "invalid_input"
    assert "interactive" in wrong["results"][0]["message"]
    assert ips[2] not in " ".join(str(entry["path"]) for entry in api_calls(function_app))


def test_a_body_that_is_neither_shape_is_a_400_saying_what_is_accepted(function_app: Emulator) -> None:
    for raw in (b"not json", b"[1, 2]", b'{"ip": "1.1.1.1"}', b'{"ips": "1.1.1.1"}', b'{"ips": [], "IPs": []}'):
        status, document = call(None, raw=raw)
        assert status == 400, raw
        assert "error" in document and "results" not in document
    assert '"ip"' in call(None, raw=b'{"ip": "1.1.1.1"}')[1]["error"]
    assert api_calls(function_app) == []


def test_a_429_longer_than_the_calls_wait_budget_is_a_rate_limited_result_per_ip(
        function_app: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPSTATS_MAX_WAIT_S", "2")
    function_app.inject_fault(Fault(route="api", status=429, headers={"Retry-After": "40"}), count=1)
    status, document = call({"ips": ["10.209.67.177", "10.209.67.178"]})
    assert status == 200
    assert [r["error"]["category"] for r in document["results"]] == ["rate_limited", "rate_limited"]
    assert all(r["error"]["retry_after_s"] >= 2 for r in document["results"])
    assert "rate_limited" in document["comment_html"] and "retry after" in document["comment_html"]
    assert len(api_calls(function_app)) == 1  # the pause held the second address back: no call into the 429


def test_a_short_429_is_waited_out_within_the_budget(function_app: Emulator) -> None:
    function_app.inject_fault(Fault(route="api", status=429, headers={"Retry-After": "1"}), count=1)
    status, document = call({"ips": ["10.209.67.177"]})
    assert status == 200 and verdicts(document) == {"10.209.67.177": "common"}
    assert [e["status"] for e in api_calls(function_app)] == [429, 200]


def test_the_token_is_requested_once_per_process(function_app: Emulator) -> None:
    for ips in (["10.209.67.177"], ["10.209.67.178", "10.209.67.179"], ["2001:db8::5"]):
        assert call({"ips": ips})[0] == 200
    counters = function_app.counters()
    assert counters["identity_token_requests"] == 1
    assert counters["token_requests"] == 0  # no Entra ID sign-in: the platform's endpoint only
    forget_process_tokens()  # a new worker process asks again, and the platform answers from its cache
    call({"ips": ["10.209.67.180"]})
    assert function_app.counters()["identity_token_requests"] == 2
    tokens = {e["detail"] for e in function_app.request_log() if e["route"] == "identity"}
    assert tokens == {"identity system", "identity system (platform cache)"}


def test_a_user_assigned_identity_is_named_by_its_client_id(emulator: Emulator,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app_settings(monkeypatch, emulator, identity="user")
    _, document = call({"ips": ["10.209.67.177"]})
    assert verdicts(document) == {"10.209.67.177": "common"}
    [request] = [e for e in emulator.request_log() if e["route"] == "identity"]
    assert f"client_id={emulator.identities['user'].client_id}" in request["path"]
    [api] = api_calls(emulator)
    assert api["client_id"] == emulator.identities["user"].client_id


def test_the_vm_metadata_service_works_too(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app_settings(monkeypatch, emulator, kind="imds")
    assert verdicts(call({"ips": ["10.209.67.177"]})[1]) == {"10.209.67.177": "common"}
    [request] = [e for e in emulator.request_log() if e["route"] == "identity"]
    assert request["path"].startswith("/metadata/identity/oauth2/token?api-version=2018-02-01")


# -- the managed identity's failures, in words -------------------------------------------------------------

def test_no_identity_enabled_on_the_function_app(function_app: Emulator) -> None:
    function_app.set_identity_assigned("system", False)
    document = call({"ips": ["10.209.67.177", "10.209.67.178"]})[1]
    assert [r["error"]["category"] for r in document["results"]] == ["configuration", "configuration"]
    message = document["results"][0]["error"]["message"]
    assert "no system-assigned identity" in message and "az functionapp identity assign" in message
    assert api_calls(function_app) == []


def test_no_identity_endpoint_at_all_on_the_host(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app_settings(monkeypatch, emulator)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")  # IMDS: nobody listens
    [result] = call({"ips": ["10.209.67.177"]})[1]["results"]
    assert result["error"]["category"] == "configuration" and result["error"]["code"] == "NoManagedIdentity"
    assert "No managed identity is available on this host" in result["message"]


def test_an_identity_without_ip_read_all_is_told_the_command_that_grants_it(emulator: Emulator,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app_settings(monkeypatch, emulator, identity="noperm-identity")
    [result] = call({"ips": ["10.209.67.177"]})[1]["results"]
    identity = emulator.identities["noperm-identity"]
    assert result["error"]["category"] == "permission" and result["error"]["http_status"] == 403
    message = result["error"]["message"]
    assert f"managed identity {identity.client_id} (object id {identity.object_id})" in message
    assert (f"az rest --method POST --uri https://graph.microsoft.com/v1.0/servicePrincipals/{identity.object_id}"
            "/appRoleAssignments") in message
    assert "fc780465-2017-40d4-a0c5-307022471b92" in message and "up to 24 hours" in message


def test_a_grant_not_yet_in_the_platforms_token_says_when_it_will_be(emulator: Emulator,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app_settings(monkeypatch, emulator, identity="noperm-identity")
    assert verdicts(call({"ips": ["10.209.67.177"]})[1]) == {"10.209.67.177": "failed:permission"}
    emulator.grant_identity_role("noperm-identity")
    forget_process_tokens()  # even a restarted worker gets the platform's cached token, without the role
    [result] = call({"ips": ["10.209.67.177"]})[1]["results"]
    assert result["error"]["category"] == "permission"
    expiry = re.search(r"keeps serving this one until it expires \((\d{4}-\d\d-\d\d \d\d:\d\d UTC)\)",
                       result["error"]["message"])
    assert expiry, result["error"]["message"]
    emulator.advance_clock(24 * 3600)  # the platform's token expired: the next one carries the grant
    forget_process_tokens()
    assert verdicts(call({"ips": ["10.209.67.177"]})[1]) == {"10.209.67.177": "common"}


def test_an_unresolved_key_vault_reference_is_refused_naming_the_setting(function_app: Emulator,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv-mde.vault.azure.net/secrets/redis-url/)"
    monkeypatch.setenv("MDE_STORE_BACKEND", "redis")
    monkeypatch.setenv("MDE_STORE_URL", reference)
    document = call({"ips": ["10.209.67.177", "bad"]})[1]
    first, second = document["results"]
    assert first["error"]["category"] == "configuration" and first["error"]["code"] == "UnresolvedKeyVaultReference"
    assert "MDE_STORE_URL" in first["message"] and "Key Vault Secrets User" in first["message"]
    assert second["error"]["category"] == "invalid_input"  # a bad item keeps its own, more precise verdict
    assert "kv-mde" not in json.dumps(document)
    assert api_calls(function_app) == [] and function_app.counters()["identity_token_requests"] == 0


def test_every_result_says_the_limit_is_per_instance_with_sqlite(function_app: Emulator) -> None:
    document = call({"ips": ["10.209.67.177", "nope"]})[1]
    assert all("rate limit counted per instance" in r["message"] for r in document["results"])
    assert "cap the Function App&#x27;s scale-out to one instance" in document["comment_html"]


@pytest.mark.redis
def test_with_redis_the_limit_is_shared_and_nothing_is_said_of_instances(
        function_app: Emulator, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("MDE_STORE_BACKEND", "redis")
    monkeypatch.setenv("MDE_STORE_URL", redis_url)
    document = call({"ips": ["10.209.67.177"]})[1]
    assert verdicts(document) == {"10.209.67.177": "common"}
    assert "per instance" not in json.dumps(document)


def test_no_secret_or_token_in_any_answer_or_log(function_app: Emulator, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    header = function_app.identity_header
    answers = [call({"ips": ["10.209.67.177", "203.0.113.7", "x"]})[1]]
    function_app.inject_fault(Fault(route="api", status=401), count=2)  # a refused token: invalidated, asked again
    forget_process_tokens()
    answers.append(call({"ips": ["10.209.67.178"]})[1])
    monkeypatch.setenv("IDENTITY_HEADER", "wrong-" + header)  # a rotated header the app has not read
    forget_process_tokens()
    answers.append(call({"ips": ["10.209.67.179"]})[1])
    assert answers[-1]["results"][0]["error"]["category"] == "authentication"
    text = json.dumps(answers) + "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "the call logs what it did"
    assert header not in text and "wrong-" + header not in text
    assert not JWT_SHAPE.search(text)
    assert "Bearer ey" not in text
