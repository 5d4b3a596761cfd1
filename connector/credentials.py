"""The configured credential as key material: what the token cache is encrypted with, and whose
answers the result cache holds.

Kept apart from auth.py (MSAL, the HTTP session) because a result-cache hit needs the identity and
nothing else of sign-in: a fresh action process answered from the cache imports no HTTP stack at all.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connector.settings import Settings


def credential_key(settings: Settings) -> bytes:
    """A 32-byte key bound to the credential (client secret or private key), the tenant, the app and
    the sign-in host: whoever holds the state without the credential learns nothing from it."""
    material = settings.client_secret or settings.private_key
    assert material is not None
    info = f"{settings.tenant_id}|{settings.client_id}|{settings.endpoints.login_url}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mde-ipstats token cache v1", info=info).derive(
        material.get_secret_value().encode())


def key_digest(key: bytes) -> str:
    """A short, one-way name for a key (never the key itself)."""
    return hashlib.sha256(key).hexdigest()[:16]


def application_identity(settings: Settings) -> str:
    """The application with this credential, as the result cache names it: a wrong or rotated secret
    is a different identity, never answered from what a working one obtained."""
    return f"app:{(settings.client_id or '').lower()}:{key_digest(credential_key(settings))}"


def managed_identity_name(settings: Settings) -> str:
    """A managed identity as the result cache and the rate gate name it: the user-assigned identity's
    client id, or the host's system-assigned identity. It has no credential to bind the name to (the
    platform vouches for the host), so nothing here needs MSAL or the network."""
    return f"managed-identity:{(settings.managed_identity_client_id or 'system-assigned').lower()}"


def quota_holder(settings: Settings) -> str:
    """Whose Defender quota a call spends (100/min, 1,500/h per application and tenant): the app
    registration, or with auth_mode managed_identity the identity's own service principal."""
    if settings.auth_mode == "managed_identity":
        return managed_identity_name(settings)
    return settings.client_id or ""
