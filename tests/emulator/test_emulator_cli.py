"""`mde-emulator serve`: a standalone process that writes its configuration and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.testing import https_session

SERVE = [sys.executable, "-c", "import sys; from emulator.cli import main; sys.exit(main())", "serve"]


def _start(out: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([*SERVE, "--out", str(out), *extra], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("mde-emulator listening on https://127.0.0.1:"), (line, process.stderr)
    return process, line.rsplit(" ", 1)[1].strip()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_writes_a_working_configuration_and_exits_0_on_a_signal(tmp_path: Path, stop_signal: int) -> None:
    process, url = _start(tmp_path, "--generation", "both", "--seed", "3")
    try:
        config = json.loads((tmp_path / "connector.json").read_text())
        assert config["api_url"] == config["login_url"] == url
        assert config["ca_bundle"] == str((tmp_path / "ca.pem").resolve())
        assert {"tenant_id", "client_id", "client_secret", "scope"} <= set(config)
        for secret_file in ("connector.json", "connector-certificate.json", "reader.key.pem"):
            assert stat.S_IMODE((tmp_path / secret_file).stat().st_mode) == 0o600, secret_file
        certificate_config = json.loads((tmp_path / "connector-certificate.json").read_text())
        assert {"private_key", "thumbprint"} <= set(certificate_config)

        session = https_session(config["ca_bundle"])
        token = session.post(f"{config['login_url']}/{config['tenant_id']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": config["client_id"],
            "client_secret": config["client_secret"], "scope": config["scope"]}).json()["access_token"]
        answer = session.get(f"{config['api_url']}/api/ips/10.209.67.177/stats",
                             headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert "orgPrevalence" in answer.json() and "organizationPrevalence" in answer.json()
        assert session.get(f"{url}/_emulator/counters").json()["api_calls"] == 1
    finally:
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_serve_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    result = subprocess.run([*SERVE, "--out", str(tmp_path), "--host", "0.0.0.0"],  # noqa: S104
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("mde-emulator")
    assert script.exists() and os.access(script, os.X_OK)
    result = subprocess.run([str(script), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "--time-scale" in result.stdout
