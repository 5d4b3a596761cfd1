"""The emulated Entra ID directory: tenants and their application registrations.

Identifiers (tenant and client GUIDs) derive from the seed, so a given seed always yields the same
IDs; secrets are fresh for every emulator, certificate keys for every process (see pki.py).
"""

from __future__ import annotations

import random
import secrets
import string
import uuid
from dataclasses import dataclass, field

from emulator.config import AppSpec, IdentitySpec, UserSpec
from emulator.pki import ClientCertificate, make_client_certificate, shared_rsa_key


def seeded_uuid(seed: int, label: str) -> str:
    return str(uuid.UUID(int=random.Random(f"mde-emulator/{seed}/{label}").getrandbits(128), version=4))


def _client_secret() -> str:
    """Shaped like an Entra secret value (40 characters with the '8Q~' marker)."""
    alphabet = string.ascii_letters + string.digits + "~._-"
    return "".join(secrets.choice(alphabet) for _ in range(3)) + "8Q~" + "".join(
        secrets.choice(alphabet) for _ in range(34))


@dataclass(frozen=True)
class Tenant:
    name: str
    tenant_id: str
    domain: str


@dataclass(frozen=True)
class AppRegistration:
    """One application: what a connector is configured with, and what Entra checks."""

    name: str
    client_id: str
    client_secret: str | None
    private_key_pem: str | None
    certificate_pem: str | None
    thumbprint_sha1_hex: str | None
    roles: tuple[str, ...]
    tenant_id: str
    thumbprint_sha256_hex: str | None = None
    display_name: str = ""
    object_id: str = ""
    certificate: ClientCertificate | None = field(default=None, repr=False, compare=False)
    public_client: bool = False
    delegated: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never print the secret or the key
        return (f"AppRegistration(name={self.name!r}, client_id={self.client_id!r}, roles={self.roles!r}, "
                f"secret={'yes' if self.client_secret else 'no'}, "
                f"certificate={self.thumbprint_sha1_hex or 'none'})")


@dataclass(frozen=True)
class User:
    """A work account: what a token's `oid`/`upn` name, and whether Defender lets it view data."""

    name: str
    upn: str
    object_id: str
    tenant_id: str
    display_name: str
    view_data: bool


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity: a service principal with no credential, whose tokens only the platform's
    identity endpoint hands out. ``principal`` is that service principal, as tokens name it."""

    name: str
    user_assigned: bool
    resource_id: str
    principal: AppRegistration

    @property
    def client_id(self) -> str:
        return self.principal.client_id

    @property
    def object_id(self) -> str:
        return self.principal.object_id


class Directory:
    def __init__(self, seed: int, tenant_names: tuple[str, ...], apps: tuple[AppSpec, ...],
                 fresh_keys: bool = False, users: tuple[UserSpec, ...] = (),
                 identities: tuple[IdentitySpec, ...] = ()) -> None:
        self.tenants: dict[str, Tenant] = {}
        for name in tenant_names:
            tid = seeded_uuid(seed, f"tenant/{name}")
            self.tenants[name] = Tenant(name, tid, f"{name}-{seed}.emulated.onmicrosoft.com")
        self.apps: dict[str, AppRegistration] = {}
        for spec in apps:
            tenant = self.tenants[spec.tenant]
            cert = make_client_certificate(
                f"mde-emulator {spec.name}", shared_rsa_key(f"client/{spec.name}", fresh_keys),
            ) if spec.certificate else None
            self.apps[spec.name] = AppRegistration(
                name=spec.name,
                client_id=seeded_uuid(seed, f"app/{spec.name}"),
                client_secret=_client_secret() if spec.secret else None,
                private_key_pem=cert.private_key_pem if cert else None,
                certificate_pem=cert.certificate_pem if cert else None,
                thumbprint_sha1_hex=cert.thumbprint_sha1_hex if cert else None,
                thumbprint_sha256_hex=cert.thumbprint_sha256_hex if cert else None,
                roles=tuple(spec.roles),
                tenant_id=tenant.tenant_id,
                display_name=f"SOAR IP enrichment ({spec.name})",
                object_id=seeded_uuid(seed, f"sp/{spec.name}"),
                certificate=cert,
                public_client=spec.public_client,
                delegated=tuple(spec.delegated),
            )
        self.users: dict[str, User] = {}
        for user in users:
            tenant = self.tenants[user.tenant]
            self.users[user.name] = User(
                name=user.name, upn=f"{user.name}@{tenant.domain}",
                object_id=seeded_uuid(seed, f"user/{user.tenant}/{user.name}"), tenant_id=tenant.tenant_id,
                display_name=user.display_name or user.name, view_data=user.view_data)
        self.identities: dict[str, ManagedIdentity] = {}
        for spec_mi in identities:
            tenant = self.tenants[spec_mi.tenant]
            kind = "userAssignedIdentities" if spec_mi.user_assigned else "sites"
            resource_name = spec_mi.name if spec_mi.user_assigned else f"func-{spec_mi.name}"
            provider = "Microsoft.ManagedIdentity" if spec_mi.user_assigned else "Microsoft.Web"
            self.identities[spec_mi.name] = ManagedIdentity(
                name=spec_mi.name, user_assigned=spec_mi.user_assigned,
                resource_id=(f"/subscriptions/{seeded_uuid(seed, 'subscription')}/resourcegroups/rg-sentinel/"
                             f"providers/{provider}/{kind}/{resource_name}"),
                principal=AppRegistration(
                    name=spec_mi.name, client_id=seeded_uuid(seed, f"mi/{spec_mi.name}"), client_secret=None,
                    private_key_pem=None, certificate_pem=None, thumbprint_sha1_hex=None,
                    roles=tuple(spec_mi.roles), tenant_id=tenant.tenant_id, display_name=resource_name,
                    object_id=seeded_uuid(seed, f"mi-sp/{spec_mi.name}")))
        self._users_by_oid = {u.object_id: u for u in self.users.values()}
        self._by_tenant_key = {t.tenant_id.lower(): t for t in self.tenants.values()}
        self._by_tenant_key.update({t.domain.lower(): t for t in self.tenants.values()})
        self._by_client = {(a.tenant_id, a.client_id.lower()): a for a in self.apps.values()}

    def tenant(self, key: str) -> Tenant | None:
        """Look a tenant up by GUID or domain name, as Entra accepts either in the path."""
        return self._by_tenant_key.get(key.lower())

    def tenant_by_id(self, tenant_id: str) -> Tenant | None:
        return self._by_tenant_key.get(tenant_id.lower())

    def app(self, tenant: Tenant, client_id: str) -> AppRegistration | None:
        return self._by_client.get((tenant.tenant_id, client_id.lower()))

    def user(self, name: str) -> User:
        """A user by name (KeyError naming the known ones otherwise)."""
        try:
            return self.users[name]
        except KeyError:
            raise KeyError(f"unknown user {name!r}; known: {', '.join(sorted(self.users))}") from None

    def user_by_oid(self, object_id: str) -> User | None:
        return self._users_by_oid.get(object_id)
