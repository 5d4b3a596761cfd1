"""TLS verification cannot be switched off silently, and a custom CA bundle and an HTTPS proxy work for
sign-in and API calls alike.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE / HTTPS_PROXY from the environment override a
session's own settings; the connector's configured ca_bundle and proxy must win, for MSAL's requests
too. The proxy is a real CONNECT proxy on loopback (helpers.ConnectProxy) that records its tunnels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from connector import run
from connector.actions import Connector
from connector.errors import ConfigurationError
from connector.settings import Settings
from emulator import Emulator
from emulator.pki import make_tls_material

from .helpers import DOC_IP, ConnectProxy, api_log, config_for

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A CA that has nothing to do with the emulator's."""
    path = tmp_path / "other-ca.pem"
    path.write_text(make_tls_material().ca_cert_pem)
    return str(path)


def lookup(config: dict[str, Any], state: Path) -> Any:
    [result] = run("get_ip_statistics", {"ip": DOC_IP, "lookback_hours": 24}, config, state_dir=state)
    return result


def assert_tls_refused(result: Any, emu: Emulator, elapsed: float) -> None:
    assert result.status == "failed" and result.error is not None, result
    assert result.error.category == "network" and result.error.code == "TlsVerificationFailed", result.error
    assert "ca_bundle" in result.message and "certificate" in result.message
    assert elapsed < 2.0, "an untrusted certificate was retried"
    assert emu.request_log() == [], "a request was answered over an unverified connection"


# -- the CA bundle ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", [
    {"REQUESTS_CA_BUNDLE": SYSTEM_BUNDLE, "CURL_CA_BUNDLE": SYSTEM_BUNDLE},
    {"REQUESTS_CA_BUNDLE": "OTHER", "CURL_CA_BUNDLE": "OTHER"},
    {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""},
    {"REQUESTS_CA_BUNDLE": "/nonexistent/bundle.pem"},
], ids=["system-bundle", "another-ca", "empty", "missing-file"])
def test_the_configured_ca_bundle_beats_the_environment(emulator: Emulator, tmp_path: Path, other_ca: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        environment: dict[str, str]) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, other_ca if value == "OTHER" else value)
    config = config_for(emulator)
    assert lookup(config, tmp_path / "state").status == "success"
    [connectivity] = run("test_connectivity", {}, config, state_dir=tmp_path / "state")
    assert connectivity.status == "success"


@pytest.mark.parametrize("environment", [
    {},
    {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""},
    {"REQUESTS_CA_BUNDLE": None, "CURL_CA_BUNDLE": None},
], ids=["system-bundle", "empty-variables", "no-variables"])
def test_without_the_issuing_ca_the_call_fails_as_network_with_a_tls_hint(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        environment: dict[str, str | None]) -> None:
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    config = {k: v for k, v in config_for(emulator, item_budget_s=10).items() if k != "ca_bundle"}
    started = time.monotonic()
    result = lookup(config, tmp_path / "state")
    assert_tls_refused(result, emulator, time.monotonic() - started)
    [connectivity] = run("test_connectivity", {}, config, state_dir=tmp_path / "state")
    assert connectivity.error is not None and connectivity.error.code == "TlsVerificationFailed"
    assert connectivity.summary == {"sign_in": False, "permission": False, "api": False}


def test_a_configured_bundle_without_the_issuer_fails_even_when_the_environment_would_trust_it(
        emulator: Emulator, tmp_path: Path, other_ca: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_path)
    monkeypatch.setenv("CURL_CA_BUNDLE", emulator.ca_path)
    started = time.monotonic()
    result = lookup(config_for(emulator, ca_bundle=other_ca, item_budget_s=10), tmp_path / "state")
    assert_tls_refused(result, emulator, time.monotonic() - started)


def test_a_bundle_of_several_cas_works(emulator: Emulator, tmp_path: Path, other_ca: str) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(Path(other_ca).read_text() + Path(emulator.ca_path).read_text())
    assert lookup(config_for(emulator, ca_bundle=str(bundle)), tmp_path / "state").status == "success"


@pytest.mark.parametrize("bundle_variables", [False, True], ids=["no-bundle-variables", "bundle-variables"])
def test_verification_cannot_be_switched_off_in_code(emulator: Emulator, tmp_path: Path, other_ca: str,
                                                     monkeypatch: pytest.MonkeyPatch, bundle_variables: bool) -> None:
    """verify=False on the session or on a request never gets through: without a ca_bundle it is refused
    as a configuration error (or, with REQUESTS_CA_BUNDLE set, requests itself puts verification back),
    and a configured ca_bundle overrides it, so the handshake is still checked."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if bundle_variables:
            monkeypatch.setenv(name, SYSTEM_BUNDLE)
        else:
            monkeypatch.delenv(name, raising=False)
    unconfigured = Settings.load({k: v for k, v in config_for(emulator).items() if k != "ca_bundle"})
    with Connector(unconfigured, state_dir=tmp_path / "a") as connector:
        connector.session.verify = False
        [result] = connector.get_ip_statistics({"ip": DOC_IP})
        assert result.error is not None, "succeeded without verifying the certificate"
        if bundle_variables:
            assert result.error.code == "TlsVerificationFailed"
        else:
            assert result.error.category == "configuration" and "verification" in result.message
        with pytest.raises(ConfigurationError):
            connector.session.get(emulator.api_url + "/api/ips/1.1.1.1/stats", verify=False)
    with Connector(Settings.load(config_for(emulator, ca_bundle=other_ca)), state_dir=tmp_path / "b") as connector:
        connector.session.verify = False
        with pytest.raises(requests.exceptions.SSLError):
            connector.session.get(emulator.api_url + "/api/ips/1.1.1.1/stats", verify=False)
    assert emulator.request_log() == []


# -- the proxy --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["secret", "certificate"])
def test_sign_in_and_api_calls_both_go_through_the_configured_proxy(emulator: Emulator, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch, auth: str) -> None:
    """Sign-in goes to 127.0.0.1:port and the API to localhost:port, so each has its own tunnel; the
    environment names a dead proxy and exempts everything, and is ignored."""
    port = emulator.base_url.rsplit(":", 1)[1]
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "*")
    with ConnectProxy() as proxy:
        config = config_for(emulator, auth=auth, proxy=proxy.url, api_url=f"https://localhost:{port}")
        assert lookup(config, tmp_path / "state").status == "success"
        [connectivity] = run("test_connectivity", {}, config, state_dir=tmp_path / "state")
        assert connectivity.status == "success"
    assert set(proxy.tunnels) == {f"127.0.0.1:{port}", f"localhost:{port}"}, proxy.tunnels
    assert all(sum(counts) > 1000 for counts in proxy.bytes_relayed.values()), proxy.bytes_relayed
    routes = [entry["route"] for entry in emulator.request_log()]
    assert {"discovery", "token", "api"} <= set(routes)
    assert routes.count("api") == 2


def test_a_proxy_that_refuses_is_a_network_error_and_never_bypassed(emulator: Emulator, tmp_path: Path) -> None:
    with ConnectProxy(refuse=True) as proxy:
        result = lookup(config_for(emulator, proxy=proxy.url, item_budget_s=1.5), tmp_path / "state")
    assert result.error is not None and result.error.category == "network"
    assert "proxy" in result.message
    assert proxy.requests and all(line.startswith("CONNECT 127.0.0.1:") for line in proxy.requests)
    assert emulator.request_log() == [] and not api_log(emulator), "the connector went around the proxy"
