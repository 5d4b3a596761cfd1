"""The Function's parts that need no emulator: port stripping, the comment's size, app settings; and the
core's managed identity rules (configuration, the grant command, the local endpoint never proxied)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from connector import ActionResult, Settings
from connector.errors import ConfigurationError, PermissionDeniedError
from connector.managed_identity import grant_command
from connector.platforms.sentinel.appsettings import function_config
from connector.platforms.sentinel.comment import COMMENT_LIMIT, incident_tags, render_comment
from connector.platforms.sentinel.request import BadRequest, parse_body, without_port
from connector.transport import ConnectorSession, is_host_local

TENANT = "11111111-2222-4333-8444-555555555555"
CLIENT = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


@pytest.mark.parametrize(("given", "address"), [
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("1.2.3.4:80", "1.2.3.4"),
    (" 10.0.0.1:65535 ", "10.0.0.1"),
    ("2001:db8::1", "2001:db8::1"),          # colons of a bare IPv6 address are not a port
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
    ("1.2.3.4:99999", "1.2.3.4:99999"),      # not a port: the core's parser refuses the whole text
    ("1.2.3.4:", "1.2.3.4:"),
    ("[2001:db8::1]:x", "[2001:db8::1]:x"),
    ("host.example:443", "host.example:443"),
    (None, None),
    (7, 7),
])
def test_a_port_is_taken_off_only_when_the_spelling_is_unambiguous(given: object, address: object) -> None:
    assert without_port(given) == address


def test_both_body_shapes_give_the_same_lookup() -> None:
    listed = parse_body(b'{"ips": ["1.2.3.4:80", "2001:db8::1"], "lookback_hours": 48}')
    entities = parse_body(b'{"IPs": [{"Address": "1.2.3.4:80"}, {"Address": "2001:db8::1"}], "lookback_hours": 48}')
    assert listed == entities
    assert listed.items == ["1.2.3.4", "2001:db8::1"] and listed.lookback_hours == 48
    assert parse_body(b'{"IPs": null}').items == []
    assert listed.lane is None and parse_body(b'{"ips": [], "lane": "interactive"}').lane == "interactive"


@pytest.mark.parametrize("raw", [b"", b"{", b'"ips"', b'{"ips": {}}', b'{"IPs": [], "extra": 1}', b"\xff"])
def test_other_bodies_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_body(raw)


def _seen(ip: str, verdict: str, devices: int) -> ActionResult:
    data = {"ipAddress": ip, "organizationPrevalence": devices, "orgPrevalence": str(devices),
            "orgFirstSeen": "2025-03-01T10:00:00Z" if devices else None,
            "orgLastSeen": "2025-03-14T10:00:00Z" if devices else None, "seenInOrg": devices > 0,
            "lookBackHours": 720, "verdict": verdict, "ipScope": "public", "ipScopeDetail": None,
            "firstSeenAgeHours": 317.0 if devices else None, "lastSeenAgeHours": 5.0 if devices else None,
            "newInWindow": False}
    return ActionResult(action="get_ip_statistics", status="success", message=f"{ip} is {verdict}",
                        parameters={"ip": ip, "lookback_hours": 720}, data=[data],
                        summary={"verdict": verdict, "ip_scope": "public"})


def _failed(ip: str, message: str) -> ActionResult:
    return ActionResult.failure("get_ip_statistics", {"ip": ip, "lookback_hours": 720},
                                PermissionDeniedError(message, http_status=403), {"ip_scope": "public"})


def test_a_big_incident_fits_the_comment_limit_with_a_line_saying_what_was_left_out() -> None:
    grant = "grant it: " + "az rest ... " * 60
    results = ([_seen(f"198.51.{i // 250}.{i % 250}", "common", 900) for i in range(400)]
               + [_seen(f"203.0.{i // 250}.{i % 250}", "not_seen", 0) for i in range(40)]
               + [_failed(f"192.0.2.{i}", grant) for i in range(30)])
    html = render_comment(results, 720, ["a closing note"])
    assert len(html) <= COMMENT_LIMIT
    assert html.count(grant[:40]) == 1  # one footnote for thirty addresses
    shown = html.count("<tr>") - 1
    assert 100 < shown < len(results)
    assert f"<b>{len(results) - shown} more addresses not shown</b> ({len(results) - shown} common)" in html
    assert html.count("NOT SEEN") == 40 and html.count("FAILED") == 30  # cut from the common ones only
    assert html.endswith("<p><i>a closing note</i></p>")


def test_a_small_incident_is_shown_whole_with_tags_per_verdict() -> None:
    results = [_seen("198.51.100.1", "rare", 2), _seen("198.51.100.2", "common", 50)]
    html = render_comment(results, 48)
    assert "more addresses not shown" not in html and html.count("<tr>") == 3
    assert incident_tags(results) == ["mde-rare"]
    assert incident_tags([*results, _seen("198.51.100.3", "not_seen", 0)]) == ["mde-not-seen", "mde-rare"]
    assert incident_tags([_failed("198.51.100.4", "x")]) == []


def test_text_from_results_is_escaped_in_the_comment() -> None:
    html = render_comment([_failed("<script>", "a <b>bold</b> & message")], 720)
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &lt;b&gt;bold&lt;/b&gt; &amp; message" in html


def test_app_settings_default_to_the_managed_identity_and_refuse_key_vault_references() -> None:
    setup = function_config({"MDE_TENANT_ID": TENANT, "OTHER": "x"})
    assert setup.config == {"auth_mode": "managed_identity", "item_budget_s": 20, "tenant_id": TENANT}
    assert setup.problem is None and setup.per_instance and setup.max_wait_s == 30.0
    assert Path("/home") not in setup.state_dir.parents
    reference = "@Microsoft.KeyVault(VaultName=kv;SecretName=s)"
    refused = function_config({"MDE_TENANT_ID": TENANT, "MDE_STORE_URL": reference, "IPSTATS_MAX_WAIT_S": "500"})
    assert isinstance(refused.problem, ConfigurationError)
    assert "MDE_STORE_URL" in refused.problem.message and "VaultName" not in refused.problem.message
    assert refused.max_wait_s == 90.0  # never past what Logic Apps waits for the answer


def test_managed_identity_settings_take_no_app_registration_and_no_credential() -> None:
    system = Settings.load({"tenant_id": TENANT, "auth_mode": "managed_identity"})
    assert system.client_id is None and system.managed_identity_client_id is None
    user = Settings.load({"tenant_id": TENANT, "auth_mode": "managed_identity", "managed_identity_client_id": CLIENT})
    assert user.managed_identity_client_id == CLIENT
    for extra in ({"client_id": CLIENT}, {"client_secret": "s3cret-value"}, {"thumbprint": "A" * 40}):
        with pytest.raises(ConfigurationError, match="managed_identity"):
            Settings.load({"tenant_id": TENANT, "auth_mode": "managed_identity", **extra})
    with pytest.raises(ConfigurationError, match="managed_identity_client_id"):
        Settings.load({"tenant_id": TENANT, "auth_mode": "managed_identity", "managed_identity_client_id": "x"})
    with pytest.raises(ConfigurationError, match="client_id is required"):
        Settings.load({"tenant_id": TENANT, "client_secret": "s3cret-value"})
    with pytest.raises(ConfigurationError, match="for auth_mode managed_identity"):
        Settings.load({"tenant_id": TENANT, "client_id": CLIENT, "client_secret": "s3cret-value",
                       "managed_identity_client_id": CLIENT})


def test_the_grant_command_runs_in_bash_and_posts_the_app_role_assignment(tmp_path: Path) -> None:
    """The command in the message, run by bash with a stand-in `az` that answers the look-ups and prints
    what `az rest` was asked: the Graph URL and a JSON body naming the identity, Defender and the role."""
    fake = tmp_path / "az"
    fake.write_text("#!/bin/bash\n"
                    "case \"$*\" in\n"
                    "  *'--query id'*) echo mde-sp-object-id ;;\n"
                    "  *appRoles*) [[ \"$*\" == *\"appRoles[?value=='Ip.Read.All'].id\"* ]] && echo role-guid ;;\n"
                    "  rest*) printf '%s\\n' \"$@\" ;;\n"
                    "esac\n")
    fake.chmod(0o755)
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-c", grant_command("mi-object-id", "gcc-high")], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}, timeout=30, check=True)
    arguments = done.stdout.splitlines()
    assert arguments[:5] == ["rest", "--method", "POST", "--uri",
                             "https://graph.microsoft.us/v1.0/servicePrincipals/mi-object-id/appRoleAssignments"]
    assert json.loads(arguments[arguments.index("--body") + 1]) == {
        "principalId": "mi-object-id", "resourceId": "mde-sp-object-id", "appRoleId": "role-guid"}


def test_the_platforms_identity_endpoint_is_never_reached_through_the_proxy() -> None:
    assert is_host_local("http://localhost:8081/msi/token") and is_host_local("http://169.254.169.254/metadata")
    assert is_host_local(b"http://127.0.0.1:41000/msi/token") and not is_host_local("https://api.security.microsoft.com")
    assert not is_host_local("https://127.0.0.1:8443/api")  # an https service on loopback keeps the proxy
    session = ConnectorSession(ca_bundle=None, proxy="http://proxy.example:3128")
    local = session.merge_environment_settings("http://127.0.0.1:41000/msi/token", {}, None, None, None)
    remote = session.merge_environment_settings("https://api.security.microsoft.com/api", {}, None, None, None)
    assert local["proxies"] == {}
    assert remote["proxies"] == {"https": "http://proxy.example:3128", "http": "http://proxy.example:3128"}
