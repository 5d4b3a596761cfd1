"""The emulator's managed identity endpoints, spoken to directly: App Service's and IMDS's protocols, their
errors, the platform's token cache, and that the identity listener serves nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
import requests

from emulator import Emulator, EmulatorConfig, Fault
from emulator.config import IdentitySpec
from emulator.testing import https_session

RESOURCE = "https://api.securitycenter.microsoft.com"


def app_service(emu: Emulator, header: str | None = None, **query: str) -> requests.Response:
    params = {"api-version": "2019-08-01", "resource": RESOURCE, **query}
    return requests.get(emu.identity_endpoint, params=params, timeout=10,
                        headers={"X-IDENTITY-HEADER": emu.identity_header if header is None else header})


def imds(emu: Emulator, metadata: bool = True, **query: str) -> requests.Response:
    params = {"api-version": "2018-02-01", "resource": RESOURCE, **query}
    return requests.get(f"{emu.identity_url}/metadata/identity/oauth2/token", params=params, timeout=10,
                        headers={"Metadata": "true"} if metadata else {})


def claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_app_service_issues_a_token_with_the_identitys_roles_and_strings_for_times(emulator: Emulator) -> None:
    answer = app_service(emulator)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "expires_on", "not_before", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str) and body["expires_on"].isdigit() and "expires_in" not in body
    system = emulator.identities["system"]
    token = claims(body["access_token"])
    assert token["aud"] == RESOURCE and token["roles"] == ["Ip.Read.All"] and token["appid"] == system.client_id
    assert token["oid"] == system.object_id and token["xms_mirid"] == system.resource_id
    assert token["tid"] == emulator.tenant_id and token["idtyp"] == "app"
    assert int(token["exp"]) - int(token["iat"]) == 24 * 3600  # managed identity tokens live a day
    api = https_session(emulator.ca_path).get(f"{emulator.api_url}/api/ips/10.209.67.177/stats",
                                              headers={"Authorization": f"Bearer {body['access_token']}"})
    assert api.status_code == 200


def test_app_service_refuses_a_wrong_header_an_unknown_identity_and_resource(emulator: Emulator) -> None:
    assert app_service(emulator, header="nope").status_code == 401
    unknown = app_service(emulator, client_id="00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 400 and unknown.json()["message"] == "Unable to load the proper Managed Identity."
    assert set(unknown.json()) == {"statusCode", "message", "correlationId"}
    assert "AADSTS500011" in app_service(emulator, resource="https://nothing.example").json()["message"]
    old = emulator.identity_header
    emulator.rotate_identity_header()
    assert app_service(emulator, header=old).status_code == 401 and app_service(emulator).status_code == 200


def test_user_assigned_identities_are_chosen_by_client_object_or_resource_id(emulator: Emulator) -> None:
    user = emulator.identities["user"]
    for selector in ({"client_id": user.client_id}, {"object_id": user.object_id}, {"mi_res_id": user.resource_id}):
        assert claims(app_service(emulator, **selector).json()["access_token"])["appid"] == user.client_id
    assert claims(imds(emulator, msi_res_id=user.resource_id).json()["access_token"])["appid"] == user.client_id
    noperm = emulator.identities["noperm-identity"]
    assert "roles" not in claims(app_service(emulator, client_id=noperm.client_id).json()["access_token"])


def test_imds_wants_the_metadata_header_and_says_identity_not_found(emulator: Emulator) -> None:
    refused = imds(emulator, metadata=False)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    answer = imds(emulator).json()
    assert answer["expires_in"].isdigit() and answer["refresh_token"] == ""
    emulator.set_identity_assigned("system", False)
    gone = imds(emulator)
    assert gone.status_code == 400
    assert gone.json() == {"error": "invalid_request", "error_description": "Identity not found"}


def test_the_platform_serves_its_cached_token_until_it_expires_even_after_a_grant(emulator: Emulator) -> None:
    noperm = emulator.identities["noperm-identity"]
    first = app_service(emulator, client_id=noperm.client_id).json()["access_token"]
    emulator.grant_identity_role("noperm-identity")
    assert app_service(emulator, client_id=noperm.client_id).json()["access_token"] == first
    emulator.advance_clock(24 * 3600)
    fresh = app_service(emulator, client_id=noperm.client_id).json()["access_token"]
    assert fresh != first and claims(fresh)["roles"] == ["Ip.Read.All"]
    details = [e["detail"] for e in emulator.request_log() if e["route"] == "identity"]
    assert details == ["identity noperm-identity", "identity noperm-identity (platform cache)",
                       "identity noperm-identity"]
    assert emulator.counters()["identity_token_requests"] == 3


def test_faults_apply_to_the_identity_route_and_the_listener_serves_nothing_else(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(route="identity", status=503), count=1)
    failed = app_service(emulator)
    assert failed.status_code == 503 and failed.json()["statusCode"] == 503
    assert app_service(emulator).status_code == 200
    assert requests.get(f"{emulator.identity_url}/api/ips/1.1.1.1/stats", timeout=10).status_code == 404
    assert requests.get(f"{emulator.identity_url}/_emulator/info", timeout=10).status_code == 404
    tls = https_session(emulator.ca_path)
    assert tls.get(f"{emulator.base_url}/msi/token", params={"resource": RESOURCE}).status_code == 404
    info = tls.get(f"{emulator.control_url}/info").json()
    assert info["identities"]["system"]["roles"] == ["Ip.Read.All"] and emulator.identity_header not in json.dumps(info)


def test_identities_are_configurable_and_checked() -> None:
    with pytest.raises(ValueError, match="at most one system-assigned"):
        EmulatorConfig(identities=(IdentitySpec("a"), IdentitySpec("b")))
    with Emulator(EmulatorConfig(identities=(IdentitySpec("mi", user_assigned=True, roles=()),))) as emu:
        assert app_service(emu).status_code == 400  # no system-assigned identity on this host
        token = app_service(emu, client_id=emu.identities["mi"].client_id).json()["access_token"]
        assert "roles" not in claims(token)


def test_the_control_endpoint_scripts_identities_and_the_files_say_how_to_be_the_host(emulator: Emulator,
                                                                                       tmp_path: Path) -> None:
    control = https_session(emulator.ca_path)
    assert control.post(f"{emulator.control_url}/identities/assigned",
                        json={"identity": "system", "assigned": False}).json() == {"done": True}
    assert app_service(emulator).status_code == 400
    control.post(f"{emulator.control_url}/identities/assigned", json={"identity": "system", "assigned": True})
    noperm = emulator.identities["noperm-identity"]
    control.post(f"{emulator.control_url}/identities/grant", json={"identity": "noperm-identity"})
    control.post(f"{emulator.control_url}/identities/forget-tokens")
    assert claims(app_service(emulator, client_id=noperm.client_id).json()["access_token"])["roles"] == ["Ip.Read.All"]
    paths = emulator.write_connector_files(tmp_path)
    environment = dict(line.split("=", 1) for line in paths["identity_env"].read_text().splitlines())
    assert environment == emulator.identity_environment() and paths["identity_env"].stat().st_mode & 0o077 == 0
    config = json.loads(paths["connector_managed_identity"].read_text())
    assert config["auth_mode"] == "managed_identity" and emulator.identity_header not in json.dumps(config)
