"""A CA bundle pasted as PEM text is trusted from memory: nothing another local user plants in the
temporary folder can choose the CA the connector trusts, receive a write, or block the connector.

The connector once wrote pasted text to ``<tmp>/mde-ipstats-<uid>/ca-<digest>.pem``, accepting a
folder whoever owned it, using a file of that name unread, and following a symlink at its temporary
name. These tests plant each of those as another user (uid 65534; the tests run as root) in a private
TMPDIR, then look up against the emulator over real HTTPS with real MSAL.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from connector import run
from connector.actions import Connector
from connector.settings import Settings
from connector.trust import PinnedTrustAdapter
from emulator import Emulator
from emulator.pki import make_tls_material

from .helpers import DOC_IP, config_for

OTHER_USER = 65534


@pytest.fixture
def tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of this test's own, as tempfile.gettempdir() answers it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    assert tempfile.gettempdir() == str(folder)
    return folder


def emulator_ca(emu: Emulator) -> str:
    return Path(emu.ca_path).read_text()


def plant_folder(tmp_dir: Path) -> Path:
    """The folder the connector used to write to, created first by another user, open to all."""
    folder = tmp_dir / f"mde-ipstats-{os.getuid()}"
    folder.mkdir()
    folder.chmod(0o777)
    os.chown(folder, OTHER_USER, OTHER_USER)
    return folder


def planted_name(pem: str) -> str:
    return f"ca-{hashlib.sha256(pem.strip().encode('ascii')).hexdigest()[:32]}"


def owned_by_other(path: Path) -> Path:
    os.chown(path, OTHER_USER, OTHER_USER, follow_symlinks=False)
    return path


def listing(folder: Path) -> dict[str, tuple[bool, str]]:
    """Every entry of folder: whether it is a symlink, and its target or content."""
    return {p.name: (p.is_symlink(), os.readlink(p) if p.is_symlink() else p.read_text()) for p in folder.iterdir()}


def lookup(config: dict[str, Any], state: Path) -> Any:
    [result] = run("get_ip_statistics", {"ip": DOC_IP, "lookback_hours": 24}, config, state_dir=state)
    return result


def assert_tls_refused(result: Any, emu: Emulator) -> None:
    assert result.status == "failed" and result.error is not None, result
    assert result.error.code == "TlsVerificationFailed", result.error
    assert emu.request_log() == [], "a request was answered over a connection the configured CA does not vouch for"


@pytest.mark.parametrize("how", ["file", "symlink"])
def test_a_planted_ca_under_the_expected_name_is_not_trusted(emulator: Emulator, tmp_dir: Path, tmp_path: Path,
                                                            how: str) -> None:
    """Another user plants the emulator's CA where the connector's copy of an unrelated configured CA
    would be: the lookup must still fail TLS verification, as it does with nothing planted."""
    configured = make_tls_material().ca_cert_pem  # a CA that did not sign the emulator's certificate
    folder = plant_folder(tmp_dir)
    if how == "file":
        planted = folder / f"{planted_name(configured)}.pem"
        planted.write_text(emulator_ca(emulator))
    else:
        decoy = folder / "decoy.pem"
        decoy.write_text(emulator_ca(emulator))
        owned_by_other(decoy)
        planted = folder / f"{planted_name(configured)}.pem"
        planted.symlink_to(decoy)
    owned_by_other(planted)
    before = listing(folder)

    assert_tls_refused(lookup(config_for(emulator, ca_bundle=configured, item_budget_s=10), tmp_path / "state"),
                       emulator)
    assert listing(folder) == before


def test_a_planted_symlink_is_never_written_through(emulator: Emulator, tmp_dir: Path, tmp_path: Path) -> None:
    """A symlink at the name the connector used for its temporary file leads to a file of the
    connector's user (and the bundle's own name dangles, so that a file would be written): the file
    must keep its content, and the lookup still works."""
    configured = emulator_ca(emulator)
    victim = tmp_path / "victim.txt"
    victim.write_text("the connector user's own file\n")
    folder = plant_folder(tmp_dir)
    name = planted_name(configured)
    (folder / f"{name}.pem").symlink_to(tmp_path / "nowhere.pem")
    (folder / f"{name}.{os.getpid()}.tmp").symlink_to(victim)
    for link in folder.iterdir():
        owned_by_other(link)
    before = listing(folder)

    result = lookup(config_for(emulator, ca_bundle=configured), tmp_path / "state")
    assert result.status == "success", result.message
    assert victim.read_text() == "the connector user's own file\n"
    assert listing(folder) == before


@pytest.mark.parametrize("planted", ["open-folder", "file-instead-of-folder"])
def test_a_planted_folder_blocks_nothing_and_receives_nothing(emulator: Emulator, tmp_dir: Path, tmp_path: Path,
                                                              planted: str) -> None:
    """Another user's folder (or a file) at the expected name neither stops a pasted bundle from
    working nor gets anything written into it."""
    place = tmp_dir / f"mde-ipstats-{os.getuid()}"
    if planted == "open-folder":
        plant_folder(tmp_dir)
    else:
        place.write_text("not a folder")
        owned_by_other(place)
    result = lookup(config_for(emulator, ca_bundle=emulator_ca(emulator)), tmp_path / "state")
    assert result.status == "success", result.message
    if planted == "open-folder":
        assert list(place.iterdir()) == []
    else:
        assert place.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_dir.iterdir()) == [place.name]


def test_pasted_pem_text_is_kept_in_memory_and_no_file_is_written(tmp_dir: Path) -> None:
    pem = make_tls_material().ca_cert_pem
    settings = Settings.load({**_minimal(), "ca_bundle": "\n" + pem + "\n"})
    assert settings.ca_bundle == pem.strip() + "\n"
    assert list(tmp_dir.iterdir()) == []


# -- what the in-memory trust must hold to be a replacement, not an addition --------------------------------


@pytest.mark.parametrize("environment", ["emulator-ca", "system-bundle"])
def test_pasted_text_of_another_ca_is_refused_whatever_the_environment_trusts(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    """REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE naming the emulator's CA (or the system bundle) add nothing to
    the configured CA: sign-in (MSAL's OpenID discovery, the first request) is refused."""
    bundle = emulator.ca_path if environment == "emulator-ca" else "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)
    config = config_for(emulator, ca_bundle=make_tls_material().ca_cert_pem, item_budget_s=10)
    started = time.monotonic()
    assert_tls_refused(lookup(config, tmp_path / "state"), emulator)
    assert time.monotonic() - started < 10, "an untrusted certificate was retried"
    [connectivity] = run("test_connectivity", {}, config, state_dir=tmp_path / "state")
    assert connectivity.error is not None and connectivity.error.code == "TlsVerificationFailed"


def test_pasted_text_of_the_issuing_ca_serves_sign_in_and_api_whatever_the_environment_says(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_text(make_tls_material().ca_cert_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    config = config_for(emulator, ca_bundle=emulator_ca(emulator))
    assert lookup(config, tmp_path / "state").status == "success"
    routes = [entry["route"] for entry in emulator.request_log()]
    assert {"discovery", "token", "api"} <= set(routes), routes  # MSAL's requests went the same way


def test_the_context_holds_exactly_the_configured_cas_before_and_after_use(emulator: Emulator,
                                                                           tmp_path: Path) -> None:
    """requests names certifi's bundle for every verified connection, which urllib3 would load into a
    context it is given: the context must still hold the configured CAs alone after real requests."""
    other_ca = make_tls_material().ca_cert_pem
    config = config_for(emulator, ca_bundle=emulator_ca(emulator) + other_ca)
    with Connector(Settings.load(config), state_dir=tmp_path / "state") as connector:
        adapter = connector.session.get_adapter("https://")
        assert isinstance(adapter, PinnedTrustAdapter)
        assert len(adapter.context.get_ca_certs()) == 2
        [result] = connector.get_ip_statistics({"ip": DOC_IP, "lookback_hours": 24})
        assert result.status == "success", result.message
        assert len(adapter.context.get_ca_certs()) == 2, "requests added CAs to the configured trust"


def _minimal() -> dict[str, str]:
    return {"tenant_id": "contoso.onmicrosoft.com", "client_id": "11111111-2222-3333-4444-555555555555",
            "client_secret": "not-a-real-secret-but-long-enough"}
