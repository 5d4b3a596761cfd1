"""Client-side helpers for tests and benchmarks that talk to an emulator (imports requests and
msal lazily: they are the connector's dependencies, not the emulator's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import msal
    import requests

    from emulator.service import Emulator


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
