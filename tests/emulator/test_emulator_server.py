"""The HTTPS server under load and at the edges: keep-alive, concurrency, stalls, clean stop."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from emulator import Emulator, EmulatorConfig
from emulator.testing import https_session

CLIENT = """
import sys, requests
base, ca, token, n = sys.argv[1:5]
s = requests.Session(); s.verify = ca; s.trust_env = False
s.headers["Authorization"] = "Bearer " + token
codes = [s.get(f"{base}/api/ips/10.209.67.177/stats?lookBackHours=24").status_code for _ in range(int(n))]
print(codes.count(200))
"""


def _connection(emu: Emulator) -> http.client.HTTPSConnection:
    port = int(emu.base_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=emu.ca_path)
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)


def test_keep_alive_serves_many_requests_on_one_connection(emulator: Emulator) -> None:
    connection = _connection(emulator)
    headers = {"Authorization": f"Bearer {emulator.issue_token('reader')}"}
    connection.request("GET", "/api/ips/10.209.67.177/stats", headers=headers)
    connection.getresponse().read()
    first_socket = connection.sock
    for _ in range(30):
        connection.request("GET", "/api/ips/10.209.67.177/stats", headers=headers)
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") is None
        answer.read()
    assert connection.sock is first_socket
    connection.close()


def test_concurrent_clients_in_threads_and_processes_all_get_answers(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=())
    token = emu.issue_token("reader")
    processes = [subprocess.Popen([sys.executable, "-c", CLIENT, emu.base_url, emu.ca_path, token, "50"],
                                  stdout=subprocess.PIPE, text=True) for _ in range(8)]
    session = https_session(emu.ca_path)
    session.headers["Authorization"] = f"Bearer {token}"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: session.get(f"{emu.api_url}/api/ips/1.2.3.4/stats").status_code,
                                 range(100)))
    assert statuses == [200] * 100
    assert [int(p.communicate(timeout=60)[0]) for p in processes] == [50] * 8
    assert emu.counters()["api_calls"] == 500


def test_a_client_that_never_speaks_tls_does_not_block_others(emulator: Emulator) -> None:
    port = int(emulator.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)):
        session = https_session(emulator.ca_path)
        assert session.get(f"{emulator.api_url}/api/ips/1.2.3.4/stats", timeout=5).status_code == 401


def test_stop_closes_open_connections_and_frees_the_port(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator()
    connection = _connection(emu)
    connection.request("GET", "/api/ips/1.2.3.4/stats")
    connection.getresponse().read()
    threads_before = threading.active_count()
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 3
    assert threading.active_count() < threads_before
    with pytest.raises((OSError, http.client.HTTPException)):
        connection.request("GET", "/api/ips/1.2.3.4/stats")
        connection.getresponse()
    port = int(emu.base_url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    emu.stop()  # idempotent


def test_stop_interrupts_a_delay_fault(make_emulator) -> None:  # type: ignore[no-untyped-def]
    from emulator import Fault

    emu = make_emulator()
    emu.inject_fault(Fault(delay_s=30))
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/1.2.3.4/stats"))
        except requests.exceptions.RequestException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    emu.stop()
    worker.join(10)
    assert time.monotonic() - started < 5
    assert not worker.is_alive()
    assert isinstance(outcome[0], requests.exceptions.ConnectionError)  # hung up, not answered


def test_unresponsive_url_times_out_on_connect(emulator: Emulator) -> None:
    assert emulator.unresponsive_url.startswith("https://127.0.0.1:")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectTimeout):
        https_session(emulator.ca_path).get(f"{emulator.unresponsive_url}/api/ips/1.2.3.4/stats",
                                            timeout=(0.5, 5))
    assert 0.4 < time.monotonic() - started < 3


def test_config_overrides_reach_the_emulator(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(generation="legacy", time_scale=2.0, seed=9)
    assert (emu.generation, emu.config.time_scale, emu.config.seed) == ("legacy", 2.0, 9)
    assert emu.running
    assert Emulator(EmulatorConfig(), seed=4).config.seed == 4


def test_connector_config_uses_the_manifest_field_names(emulator: Emulator) -> None:
    shared = {"tenant_id", "client_id", "api_url", "login_url", "scope", "ca_bundle"}
    assert set(emulator.connector_config()) == shared | {"client_secret"}
    assert set(emulator.connector_config(auth="certificate")) == shared | {"private_key", "thumbprint"}
    assert set(emulator.connector_config(auth="certificate_chain")) == shared | {"private_key",
                                                                                 "public_certificate"}
    assert emulator.connector_config()["ca_bundle"] == emulator.ca_path
    with pytest.raises(ValueError):
        emulator.connector_config("noperm", auth="certificate")


def test_a_stopped_emulator_can_be_started_again(make_emulator) -> None:  # type: ignore[no-untyped-def]
    from emulator import Fault

    emu = make_emulator()
    emu.stop()
    emu.start()
    emu.inject_fault(Fault(delay_s=0.2))
    started = time.monotonic()
    answer = https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/1.2.3.4/stats")
    assert answer.status_code == 401
    assert time.monotonic() - started >= 0.2
