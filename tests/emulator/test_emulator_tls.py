"""The emulator speaks real TLS with a CA it generates: trusted with ca_path, refused without."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
from cryptography import x509

from emulator import Emulator, EmulatorConfig
from emulator.testing import https_session


def test_served_over_https_trusted_by_the_generated_ca(emulator_session: Emulator) -> None:
    answer = https_session(emulator_session.ca_path).get(
        f"{emulator_session.login_url}/{emulator_session.tenant_id}/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 200
    assert emulator_session.base_url.startswith("https://127.0.0.1:")


def test_refused_by_a_client_that_does_not_trust_the_generated_ca(emulator_session: Emulator) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{emulator_session.base_url}/{emulator_session.tenant_id}/v2.0/.well-known/openid-configuration",
                    timeout=5)


def test_server_certificate_names_localhost_and_both_loopback_addresses(emulator_session: Emulator) -> None:
    port = int(emulator_session.base_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=emulator_session.ca_path)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert {str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_plain_http_gets_no_answer(emulator_session: Emulator) -> None:
    url = emulator_session.base_url.replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/api/ips/10.209.67.177/stats", timeout=5)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])  # noqa: S104
def test_refuses_to_bind_anything_but_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmulatorConfig(host=host)


def test_localhost_is_served_under_its_name(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(host="localhost")
    assert emu.base_url.startswith("https://localhost:")
    assert https_session(emu.ca_path).get(f"{emu.base_url}/api/ips/1.2.3.4/stats").status_code == 401


def test_ipv6_loopback_is_served_too(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(host="::1")
    assert emu.base_url.startswith("https://[::1]:")
    assert https_session(emu.ca_path).get(f"{emu.base_url}/api/ips/1.2.3.4/stats").status_code == 401
