"""``mde-ipstats demo``: the connector end to end against the built-in emulator.

Nothing here reaches Microsoft: the emulator (a separate, test-only package) serves Entra ID and
the Defender API over real TLS on loopback, and the connector talks to it exactly as it would to the
real service — MSAL sign-in, the shared token cache, the rate-limit gate, the result cache.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, TextIO

from connector.actions import GET_IP_STATISTICS, TEST_CONNECTIVITY
from connector.cli import render_table, run
from connector.inputs import parse_ip_items
from connector.signin import COMPLETE_SIGN_IN, SIGN_OUT, START_SIGN_IN

SAMPLE_ALERT = Path(__file__).resolve().parent.parent / "playbooks" / "sample_alert.json"
DOCUMENTATION_IP = "10.209.67.177"
IP_FIELDS = ("sourceAddress", "destinationAddress", "deviceAddress", "sourceTranslatedAddress",
             "destinationTranslatedAddress", "ip", "ipv6")


def alert_ips(path: Path = SAMPLE_ALERT) -> list[str]:
    """The IP fields of every artifact of a sample alert, in order (duplicates kept: the connector dedups)."""
    alert: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    ips: list[str] = []
    for artifact in alert.get("artifacts", []):
        cef = artifact.get("cef", {})
        ips.extend(str(cef[field]) for field in IP_FIELDS if cef.get(field))
    return ips


def rare_ip(org: Any, threshold: int = 5) -> str:
    """An IP of the emulated organization seen on a handful of devices (the long tail of its popularity law)."""
    for ip in reversed(org.data.ips):
        if 1 <= org.stats(ip)[0] <= threshold:
            return str(ip)
    raise LookupError("the emulated organization has no rare IP")


def run_demo(out: TextIO) -> int:
    try:
        from emulator import Emulator, EmulatorConfig  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        out.write("The demo needs the emulator package: run ./run.sh demo from a checkout.\n")
        return 2

    def section(title: str) -> None:
        out.write(f"\n== {title}\n")

    with tempfile.TemporaryDirectory(prefix="mde-ipstats-demo-") as state, Emulator(EmulatorConfig()) as emu:
        config = emu.connector_config(app="reader", auth="certificate")
        state_dir = Path(state)

        def lookup(ip: Any, hours: int = 720) -> list[Any]:
            return run(GET_IP_STATISTICS, {"ip": ip, "lookback_hours": hours}, config, state_dir=state_dir)

        out.write(f"Emulated Entra ID + Defender API at {emu.base_url} (TLS, CA {emu.ca_path})\n")
        out.write("Signing in with MSAL and a certificate (client assertion), as a production app would.\n")

        section("test connectivity")
        out.write(run(TEST_CONNECTIVITY, {}, config, state_dir=state_dir)[0].message + "\n")

        section(f"the documentation's example: {DOCUMENTATION_IP}, last 48 hours")
        seen = lookup(DOCUMENTATION_IP, 48)
        out.write(render_table(seen) + "\n\nThe result object, as playbooks receive it:\n")
        out.write(json.dumps(seen[0].to_dict(), indent=2) + "\n")

        never = emu.org.sample_ips(1, seen=False)[0]
        section(f"an IP never seen in the organization: {never}")
        out.write(render_table(lookup(never)) + "\n")

        rare = rare_ip(emu.org)
        section("what each answer means: common, rare, not seen (verdict and scope are judged by the connector)")
        meanings = lookup([DOCUMENTATION_IP, rare, never])
        out.write(render_table(meanings) + "\n\nIn words (each result's message):\n")
        for result in meanings:
            out.write(f"  {result.message}\n")

        section("an invalid IP: nothing is sent to Defender")
        before = emu.counters()["api_calls"]
        out.write(render_table(lookup("1.1.1.1/../machines")) + "\n")
        out.write(f"API calls made for it: {emu.counters()['api_calls'] - before}\n")

        batch = alert_ips()
        distinct = len({item.ip for item in parse_ip_items(batch) if item.ip})
        section(f"a batch from {SAMPLE_ALERT.name}: {len(batch)} IP fields, {distinct} distinct")
        before = emu.counters()
        out.write(render_table(lookup(batch)) + "\n")
        after = emu.counters()
        out.write(f"API calls: {after['api_calls'] - before['api_calls']}, "
                  f"token requests: {after['token_requests'] - before['token_requests']}\n")

        section("the same alert again a moment later: answered from the result cache")
        out.write(render_table(lookup(batch)) + "\n")
        out.write(f"API calls: {emu.counters()['api_calls'] - after['api_calls']}; "
                  f"token requests in the whole demo: {emu.counters()['token_requests']}\n")

        delegated_demo(emu, state_dir / "delegated", section, out)
        managed_identity_demo(emu, state_dir / "managed-identity", section, out)
    return 0


def managed_identity_demo(emu: Any, state_dir: Path, section: Any, out: TextIO) -> None:
    """A managed identity (as an Azure Function signs in, docs/sentinel.md): no app registration, no secret;
    the host's identity endpoint hands out the token."""
    import os

    section("managed identity: the host's own identity, no secret anywhere (auth_mode managed_identity)")
    environment = emu.identity_environment("app_service")
    out.write(f"The emulator plays an Azure Function's host: IDENTITY_ENDPOINT={environment['IDENTITY_ENDPOINT']} "
              "(and IDENTITY_HEADER, a secret the platform rotates).\n")
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        config = emu.managed_identity_config("system")  # tenant_id and auth_mode: nothing secret
        out.write(run(TEST_CONNECTIVITY, {}, config, state_dir=state_dir)[0].message + "\n")
        before = emu.counters()["identity_token_requests"]
        result = run(GET_IP_STATISTICS, {"ip": DOCUMENTATION_IP, "lookback_hours": 48}, config, state_dir=state_dir)
        out.write(render_table(result) + "\n")
        out.write(f"Token requests to the identity endpoint for the lookup: "
                  f"{emu.counters()['identity_token_requests'] - before} (the process already held the token)\n")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def delegated_demo(emu: Any, state_dir: Path, section: Any, out: TextIO) -> None:
    """Delegated access: an analyst signs in with a device code, and a lookup runs as that person."""
    section("delegated access: an analyst signs in with a device code (auth_mode delegated)")
    analyst = emu.users["analyst"].upn
    out.write(f"The emulator plays the analyst {analyst}: it approves the code by itself on the second poll.\n"
              "In real life the analyst opens the URL in a browser and types the code.\n\n")
    emu.set_device_auto_approve("analyst", after_polls=2)
    config = emu.delegated_config()  # tenant and client id only: a public client, no secret
    started = run(START_SIGN_IN, {}, config, state_dir=state_dir)[0]
    out.write(f"start sign in     -> {started.message}\n")
    pending = run(COMPLETE_SIGN_IN, {}, config, state_dir=state_dir)[0]
    out.write(f"complete sign in  -> {pending.summary.get('state')}: {pending.message}\n")
    done = run(COMPLETE_SIGN_IN, {"wait_s": 30}, config, state_dir=state_dir)[0]
    out.write(f"complete sign in  -> {done.summary.get('state')}: {done.message}\n\n")
    result = run(GET_IP_STATISTICS, {"ip": DOCUMENTATION_IP, "lookback_hours": 48}, config, state_dir=state_dir)
    out.write(render_table(result) + "\n")
    calls = [e for e in emu.request_log() if e["route"] == "api"]
    out.write(f"Defender saw the lookup made by: {(calls[-1]['detail'] or '').removeprefix('user ')}\n")
    out.write(run(SIGN_OUT, {}, config, state_dir=state_dir)[0].message + "\n")
