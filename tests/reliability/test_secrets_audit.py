"""The secrets audit: run every action and error path, then search everything the connector produced
for the client secret, the private key and every access token the emulator issued; in delegated mode
also every refresh token and device code it handed out (id tokens are JWTs, caught by their shape).

Searched: stdout and stderr (in-process and of the CLI run as a subprocess with --log-level debug),
every log record at DEBUG from every logger but the emulator's own (captured raw from the root logger,
with no redaction filter, so a secret that reaches a log call at all is caught), result JSON and reprs,
exception texts and tracebacks, and every file under every state directory (SQLite files included,
read as bytes). On top of the exact values, any JWT-shaped text (``eyJ...``.``eyJ...``) fails the audit: that also
catches the client assertions MSAL signs with the private key, which the emulator does not hand out.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from connector import ActionResult, run
from connector.auth import TokenProvider, forget_process_tokens
from connector.errors import ConnectorError
from connector.settings import Settings
from connector.state import MemoryStateStore
from connector.transport import build_session
from emulator import Emulator, Fault
from emulator.testing import JWT_SHAPE as JWT

from .helpers import DOC_IP, config_for, record_issued_tokens

WRONG_SECRET = "AUDIT-WRONG-SECRET-" + "Zq8Q~x7Kp2Vw9LmN4rT6yB1cD3fG5hJ0"
REPO = Path(__file__).resolve().parents[2]


class _Records(logging.Handler):
    """Every record at DEBUG and above, formatted with its traceback, except the emulator's own."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("emulator"):
            self.lines.append(self.format(record))


@dataclass
class Audit:
    emu: Emulator
    root: Path
    tokens: list[str]
    records: _Records
    texts: list[str] = field(default_factory=list)
    state_dirs: list[Path] = field(default_factory=list)
    runs: int = 0

    def state(self, name: str) -> Path:
        path = self.root / f"state-{name}"
        self.state_dirs.append(path)
        return path

    def keep(self, results: list[ActionResult]) -> list[ActionResult]:
        for result in results:
            self.texts += [json.dumps(result.to_dict()), repr(result), str(result)]
        self.runs += 1
        return results

    def lookup(self, name: str, config: dict[str, Any], ip: Any = DOC_IP, **params: Any) -> ActionResult:
        forget_process_tokens()  # each lookup stands for a separate action run, i.e. a new process
        [result, *_] = self.keep(run("get_ip_statistics", {"ip": ip, **params}, config, state_dir=self.state(name)))
        return result

    def connectivity(self, name: str, config: dict[str, Any]) -> ActionResult:
        forget_process_tokens()
        [result] = self.keep(run("test_connectivity", {}, config, state_dir=self.state(name)))
        return result

    def exception(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


@pytest.fixture
def audit(make_emulator: Callable[..., Emulator], tmp_path: Path) -> Iterator[Audit]:
    emu = make_emulator()
    records = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        yield Audit(emu, tmp_path, record_issued_tokens(emu), records)
    finally:
        root.removeHandler(records)
        root.setLevel(level)


def secrets_of(emu: Emulator) -> dict[str, list[str]]:
    """What must never show: each app's client secret, the wrong secret the audit tries, and the
    private key in PEM, as one line of base64, line by line, and as slices across lines."""
    pem = emu.connector_config(auth="certificate")["private_key"]
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    body = "".join(lines)
    middle = len(body) // 2
    slices = [body[i:i + 40] for i in (middle - 200, middle - 20, middle + 200)]
    secrets = [app.client_secret for app in emu.apps.values() if app.client_secret]
    assert all(len(s) >= 32 for s in secrets), "the emulator's secrets are too short to be distinctive"
    return {"client secret": [*secrets, WRONG_SECRET],
            "private key": [pem.strip(), body, *slices, *(line for line in lines if len(line) >= 32)]}


def private_key_der(emu: Emulator) -> bytes:
    pem = emu.connector_config(auth="certificate")["private_key"]
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def leaks_in(text: str, secrets: dict[str, list[str]], tokens: list[str]) -> list[str]:
    flat = text.replace("\\n", "").replace("\n", "").replace("\r", "")
    found = {kind for kind, values in secrets.items() for value in values if value in text or value in flat}
    for token in tokens:
        _, payload, signature = token.split(".")
        pieces = (token, payload, signature, payload[len(payload) // 2:][:24], signature[len(signature) // 2:][:24])
        if any(piece in text for piece in pieces):
            found.add("access token")
    jwt = JWT.search(text)
    if jwt:
        found.add(f"JWT-shaped text {jwt[0][:12]}...")
    return sorted(found)


def assert_clean(audit: Audit, outputs: dict[str, str]) -> None:
    secrets = {**secrets_of(audit.emu), **audit.emu.issued_delegated_secrets()}
    assert audit.tokens, "no token was issued: the audit proved nothing"
    problems = []
    for where, text in outputs.items():
        problems += [f"{kind} in {where}" for kind in leaks_in(text, secrets, audit.tokens)]
    der = private_key_der(audit.emu)
    files = [p for d in audit.state_dirs if d.exists() for p in d.rglob("*") if p.is_file()]
    assert any(p.name == "state.sqlite3" for p in files), "no state file was written: nothing was audited"
    for path in files:
        content = path.read_bytes()
        text = content.decode("latin-1")
        problems += [f"{kind} in {path.name}" for kind in leaks_in(text, secrets, audit.tokens)]
        if der[len(der) // 2: len(der) // 2 + 32] in content:
            problems.append(f"private key (DER) in {path.name}")
    assert not problems, problems


def test_no_secret_key_or_token_appears_in_any_output_or_state_file(audit: Audit, capfd: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    emu = audit.emu
    secret = config_for(emu, item_budget_s=3)
    never = emu.org.sample_ips(1, seen=False)[0]

    # Successes, in both credential forms, and the answers that are not failures.
    assert audit.lookup("success", secret).status == "success"
    assert audit.lookup("success", secret, ip=never).summary["seen_in_org"] is False
    assert audit.lookup("certificate", config_for(emu, auth="certificate")).status == "success"
    assert audit.lookup("certificate-chain", config_for(emu, auth="certificate_chain")).status == "success"
    assert audit.connectivity("success", secret).status == "success"
    assert audit.connectivity("certificate", config_for(emu, auth="certificate")).status == "success"

    # Every failure category the connector can produce with a credential in hand.
    wrong = {**secret, "client_secret": WRONG_SECRET}
    wrong_certificate = {**config_for(emu, auth="certificate"), "client_id": emu.apps["reader2"].client_id}
    failures: list[tuple[str, Fault | None, int | None, Callable[[], ActionResult], str]] = [
        ("invalid input", None, None, lambda: audit.lookup("success", secret, ip="1.1.1.1/../machines"),
         "invalid_input"),
        ("wrong secret", None, None, lambda: audit.lookup("wrong-secret", wrong), "authentication"),
        ("wrong certificate", None, None, lambda: audit.lookup("wrong-cert", wrong_certificate), "authentication"),
        ("noperm 403", None, None, lambda: audit.lookup("noperm", config_for(emu, app="noperm")), "permission"),
        ("noperm connectivity", None, None, lambda: audit.connectivity("noperm", config_for(emu, app="noperm")),
         "permission"),
        ("wrong secret connectivity", None, None, lambda: audit.connectivity("wrong-secret", wrong),
         "authentication"),
        ("401 twice", Fault(status=401), 2, lambda: audit.lookup("success", secret), "authentication"),
        ("429 past the budget", Fault(status=429, headers={"Retry-After": "60"}), 1,
         lambda: audit.lookup("429", secret), "rate_limited"),
        ("5xx", Fault(status=503), None, lambda: audit.lookup("5xx", {**secret, "item_budget_s": 1}), "unavailable"),
        ("malformed", Fault(malformed=True), 1, lambda: audit.lookup("success", secret), "unexpected_response"),
        ("token endpoint down", Fault(route="token", status=500), None,
         lambda: audit.lookup("token-down", {**secret, "item_budget_s": 1}), "unavailable"),
        ("configuration", None, None, lambda: audit.lookup(
            "configuration", {**secret, "thumbprint": WRONG_SECRET, "password": secret["client_secret"]}),
         "configuration"),
    ]
    for name, fault, count, action, category in failures:
        emu.clear_faults()
        if fault is not None:
            emu.inject_fault(fault, count=count)
        result = action()
        assert result.error is not None and result.error.category == category, (name, result)
    emu.clear_faults()

    # Exceptions as a caller of the library sees them, and the settings object itself.
    settings = Settings.load({**secret, "client_secret": WRONG_SECRET})
    provider = TokenProvider(settings, build_session(settings), MemoryStateStore())
    with pytest.raises(ConnectorError) as refused:
        provider.get(deadline=time.monotonic() + 5)
    audit.exception(refused.value)
    for form in ("secret", "certificate"):
        loaded = Settings.load(config_for(emu, auth=form))
        audit.texts += [repr(loaded), str(loaded), loaded.model_dump_json(),
                        json.dumps(dict(loaded), default=str)]

    # The CLI as an operator runs it, at debug level, in its own process.
    cli_outputs = {}
    for name, config in (("cli-secret", secret), ("cli-certificate", config_for(emu, auth="certificate")),
                         ("cli-wrong-secret", {**secret, "client_secret": WRONG_SECRET})):
        config_file = tmp_path / f"{name}.json"
        config_file.write_text(json.dumps(config))
        state = audit.state(name)
        for argv in (["get-ip-statistics", DOC_IP, never, "1.1.1.1?x", "--format", "json"],
                     ["test-connectivity", "--format", "table"]):
            done = subprocess.run([sys.executable, "-m", "connector.cli", *argv, "--config", str(config_file),
                                   "--state-dir", str(state), "--log-level", "debug"],
                                  capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
            assert done.returncode in (0, 1), done.stderr
            assert "DEBUG" in done.stderr, "the CLI did not log at debug level"
            cli_outputs[f"{name} {argv[0]} stdout"] = done.stdout
            cli_outputs[f"{name} {argv[0]} stderr"] = done.stderr

    captured = capfd.readouterr()
    assert audit.records.lines and any("oauth2/v2.0/token" in line for line in audit.records.lines)
    assert len(audit.tokens) >= 8, audit.tokens
    assert_clean(audit, {
        "stdout": captured.out, "stderr": captured.err, "debug log": "\n".join(audit.records.lines),
        "results and exceptions": "\n".join(audit.texts), **cli_outputs,
    })


def test_the_audit_would_catch_a_leak(audit: Audit) -> None:
    """The search itself works: a token, the secret and the key logged on purpose are all found."""
    emu = audit.emu
    assert audit.lookup("success", config_for(emu)).status == "success"
    secrets = secrets_of(emu)
    token = audit.tokens[0]
    pem = emu.connector_config(auth="certificate")["private_key"]
    body_line = pem.splitlines()[len(pem.splitlines()) // 2]
    assert "access token" in leaks_in(f"Authorization: Bearer {token}", secrets, audit.tokens)
    assert leaks_in(json.dumps({"k": pem}), secrets, audit.tokens) == ["private key"]
    assert leaks_in(f"... {body_line} ...", secrets, []) == ["private key"]
    assert leaks_in(f"secret={config_for(emu)['client_secret']}", secrets, []) == ["client secret"]
    assert leaks_in(token.split(".")[2], secrets, audit.tokens) == ["access token"]
    assert not leaks_in(base64.b64encode(b"harmless").decode(), secrets, audit.tokens)


def test_no_refresh_token_device_code_or_user_token_leaks_in_delegated_mode(
        audit: Audit, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    emu = audit.emu
    delegated = {**emu.delegated_config(), "cache_ttl_s": 0, "item_budget_s": 5}
    state = audit.state("delegated")

    def act(action: str, **params: Any) -> ActionResult:
        forget_process_tokens()
        [result] = audit.keep(run(action, params, delegated, state_dir=state))
        return result

    # Not signed in, then the two-step sign-in, lookups, a refresh (the API refuses the access token,
    # the connector drops it and refreshes with the refresh token), connectivity.
    assert audit.lookup("delegated", delegated).error.code == "NotSignedIn"  # type: ignore[union-attr]
    started = act("start_sign_in")
    assert act("complete_sign_in").summary["state"] == "pending"
    emu.approve_device_code(started.summary["user_code"], "analyst")
    assert act("complete_sign_in").summary["state"] == "signed_in"
    assert audit.lookup("delegated", delegated).status == "success"
    emu.revoke_tokens()
    assert audit.lookup("delegated", delegated).status == "success"
    assert emu.refresh_tokens_issued("analyst") == 2, "no refresh happened: the audit proved less than it says"
    assert act("test_connectivity").status == "success"

    # Failures: declined, View data missing (403), a refused refresh; then sign out.
    other = audit.state("delegated-other")
    declined = only_result(audit, run("start_sign_in", {}, delegated, state_dir=other))
    emu.decline_device_code(declined.summary["user_code"])
    assert only_result(audit, run("complete_sign_in", {}, delegated, state_dir=other)).error is not None
    norole = audit.state("delegated-norole")
    started = only_result(audit, run("start_sign_in", {}, delegated, state_dir=norole))
    emu.approve_device_code(started.summary["user_code"], "norole")
    only_result(audit, run("complete_sign_in", {}, delegated, state_dir=norole))
    assert audit.lookup("delegated-norole", delegated).error.category == "permission"  # type: ignore[union-attr]
    emu.revoke_refresh_tokens("analyst")
    emu.revoke_tokens()
    assert audit.lookup("delegated", delegated).error.code == "AADSTS50173"  # type: ignore[union-attr]
    assert act("sign_out").status == "success"

    # The CLI in its own process at debug level: login (approved by the emulator), a lookup, logout.
    emu.set_device_auto_approve("analyst2", after_polls=1)
    config_file = tmp_path / "delegated.json"
    config_file.write_text(json.dumps(delegated))
    cli_state = audit.state("cli-delegated")
    cli_outputs = {}
    for argv in (["login"], ["get-ip-statistics", DOC_IP, "--format", "json"], ["test-connectivity"], ["logout"]):
        done = subprocess.run([sys.executable, "-m", "connector.cli", *argv, "--config", str(config_file),
                               "--state-dir", str(cli_state), "--log-level", "debug"],
                              capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        cli_outputs[f"cli {argv[0]} stdout"] = done.stdout
        cli_outputs[f"cli {argv[0]} stderr"] = done.stderr
    # A signed-in state, kept for the file search (logout above emptied the other one).
    kept = audit.state("cli-delegated-kept")
    assert subprocess.run([sys.executable, "-m", "connector.cli", "login", "--config", str(config_file),
                           "--state-dir", str(kept)], capture_output=True, text=True, timeout=60, cwd=REPO,
                          check=False).returncode == 0

    issued = emu.issued_delegated_secrets()
    assert len(issued["refresh token"]) >= 5 and len(issued["device code"]) >= 4
    captured = capfd.readouterr()
    assert_clean(audit, {
        "stdout": captured.out, "stderr": captured.err, "debug log": "\n".join(audit.records.lines),
        "results and exceptions": "\n".join(audit.texts), **cli_outputs,
    })


def only_result(audit: Audit, results: list[ActionResult]) -> ActionResult:
    [result] = audit.keep(results)
    return result
