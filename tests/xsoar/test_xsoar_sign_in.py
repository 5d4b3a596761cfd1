"""Delegated access in XSOAR: the analyst signs in with a device code through !mde-auth-start and
!mde-auth-complete; lookups then run as that person until !mde-auth-reset. Each command is a fresh
process, so the flow and the user's tokens travel through the integration context."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from xsoar_helpers import read_context, run_command, xsoar_params

from emulator.testing import JWT_SHAPE

SIGN_IN = "MDE.SignIn"
MDE_KEY = "MDE.IPStatistics(val.IPAddress && val.IPAddress == obj.IPAddress)"


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
    assert "What to do: Sign in (again) as the analyst in XSOAR: run !mde-auth-start" in error["HumanReadable"]


def test_sign_in_commands_in_application_mode_say_what_to_set(fresh_emu: Any, context_file: Path) -> None:
    run = run_command("mde-auth-start", xsoar_params(fresh_emu), None, context_file)
    [error] = run.errors
    assert "mde-auth-start failed" in error["HumanReadable"]
    assert "delegated" in error["HumanReadable"]
