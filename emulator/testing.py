"""Client-side helpers for tests and benchmarks that talk to an emulator (imports requests and
msal lazily: they are the connector's dependencies, not the emulator's)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import msal
    import requests

    from emulator.service import Emulator

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
"""A JWT's header and payload, as a leak check looks for tokens in text. (A bare "eyJ" is no evidence:
it turns up by chance in base64 ciphertext, about once per 256 KB.)"""


def https_session(ca_path: str) -> requests.Session:
    """A Session that trusts only the emulator's CA. trust_env is off so that REQUESTS_CA_BUNDLE
    in the environment cannot override `verify` (it would, for requests made without `verify=`)."""
    import requests

    session = requests.Session()
    session.verify = ca_path
    session.trust_env = False
    return session


def msal_app(emu: Emulator, app: str = "reader", auth: str = "secret",
             session: requests.Session | None = None, **kwargs: Any) -> msal.ConfidentialClientApplication:
    """An MSAL confidential client wired to the emulator (the way a connector should build one)."""
    import msal

    registration = emu.apps[app]
    credential: Any
    if auth == "secret":
        credential = registration.client_secret
    elif auth == "certificate":
        credential = {"private_key": registration.private_key_pem, "thumbprint": registration.thumbprint_sha1_hex}
    elif auth == "certificate_chain":
        credential = {"private_key": registration.private_key_pem,
                      "public_certificate": registration.certificate_pem}
    else:
        raise ValueError("auth must be 'secret', 'certificate' or 'certificate_chain'")
    return msal.ConfidentialClientApplication(
        registration.client_id, client_credential=credential,
        authority=f"{emu.login_url}/{registration.tenant_id}", instance_discovery=False,
        http_client=session or https_session(emu.ca_path), **kwargs)


DEFENDER_IP_READ = "https://api.securitycenter.microsoft.com/Ip.Read.All"


def public_msal_app(emu: Emulator, app: str = "delegated", session: requests.Session | None = None,
                    **kwargs: Any) -> msal.PublicClientApplication:
    """An MSAL public client (device code flow) wired to the emulator: no credential, instance
    discovery off (it would call login.microsoftonline.com), the emulator's CA trusted."""
    import msal

    registration = emu.apps[app]
    return msal.PublicClientApplication(
        registration.client_id, authority=f"{emu.login_url}/{registration.tenant_id}", instance_discovery=False,
        http_client=session or https_session(emu.ca_path), **kwargs)


def sign_in(emu: Emulator, pca: msal.PublicClientApplication, user: str = "analyst",
            scopes: list[str] | None = None) -> dict[str, Any]:
    """A complete device-code sign-in as `user`: initiate, approve in the emulator, one poll."""
    flow = pca.initiate_device_flow(scopes or [DEFENDER_IP_READ])
    if "user_code" not in flow:
        raise RuntimeError(f"device flow refused: {flow.get('error')}: {flow.get('error_description')}")
    emu.approve_device_code(flow["user_code"], user)
    result: dict[str, Any] = pca.acquire_token_by_device_flow(flow, exit_condition=lambda _: True)
    return result
