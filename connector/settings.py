"""The connector's configuration, validated before any network traffic.

Field names are manifest.json's configuration fields (manifest.json is generated from this model).
Secrets are connector.models.Secret (pydantic's SecretStr), so that a repr, a log line or a validation
error can never print them; a problem names the field and why, never the value given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, model_validator

from connector.endpoints import Cloud, Endpoints, Region, resolve_endpoints
from connector.errors import ConfigurationError
from connector.lanes import Lane
from connector.models import Model, Secret, ShapeError, load

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TENANT_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_SECRETS = ("client_secret", "private_key", "store_url")

TIER = "x-tier"
"""Who sets a field, said in manifest.json by each configuration property's x-tier (every field has one;
a test checks): each platform package maps it to its own screens. "basic": every install needs it (the
tenant, the client, the credential, the cloud); "advanced": overrides, trust, proxy, timeouts, budgets,
limits, store, cache, verdict thresholds, shown behind the platform's "advanced" fold with their defaults;
"testing": only our tests set it (time compression), and no platform package ever shows it."""
TIERS = ("basic", "advanced", "testing")

StoreBackend = Literal["sqlite", "redis", "memory"]
StoreUnavailable = Literal["local", "fail"]
AuthMode = Literal["application", "delegated", "managed_identity"]


class Settings(Model):
    """Everything the core needs to reach one tenant's Defender API."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(description="Directory (tenant) ID: a GUID, or a verified domain name",
                           json_schema_extra={"x-tier": "basic"})
    client_id: str | None = Field(
        default=None,
        description="Application (client) ID of the app registration (not used with auth_mode managed_identity)",
        json_schema_extra={"x-tier": "basic"})
    client_secret: Secret | None = Field(default=None, description="Client secret (or use a certificate)",
                                         json_schema_extra={"x-tier": "basic"})
    private_key: Secret | None = Field(default=None, description="Certificate private key, PEM",
                                       json_schema_extra={"x-tier": "basic"})
    thumbprint: str | None = Field(default=None, description="SHA-1 thumbprint of the certificate, hex",
                                   json_schema_extra={"x-tier": "basic"})
    public_certificate: str | None = Field(default=None, description="The certificate, PEM (instead of thumbprint)",
                                           json_schema_extra={"x-tier": "basic"})
    auth_mode: AuthMode = Field(
        default="application",
        description="application: the app signs in with its secret or certificate (application Ip.Read.All); "
                    "delegated: an analyst signs in with a device code, where the platform offers the sign-in "
                    "steps, and lookups run as that person (delegated Ip.Read.All and the View data "
                    "role); tenant_id and client_id only, no secret; managed_identity: the Azure resource's own "
                    "identity (a Function App, VM...), no secret anywhere (application Ip.Read.All granted to the "
                    "identity)",
        json_schema_extra={"x-tier": "basic"})
    managed_identity_client_id: str | None = Field(
        default=None,
        description="auth_mode managed_identity: the client ID of a user-assigned identity; empty for the "
                    "system-assigned one",
        json_schema_extra={"x-tier": "basic"})
    cloud: Cloud = Field(default="commercial", description="Microsoft cloud the tenant lives in",
                         json_schema_extra={"x-tier": "basic"})
    region: Region = Field(default="auto", description="Geo API host nearest the tenant's data",
                           json_schema_extra={"x-tier": "advanced"})
    api_url: str | None = Field(default=None, description="Override: Defender API base URL",
                                json_schema_extra={"x-tier": "advanced"})
    login_url: str | None = Field(default=None, description="Override: Entra ID sign-in host",
                                  json_schema_extra={"x-tier": "advanced"})
    scope: str | None = Field(default=None, description="Override: token scope",
                              json_schema_extra={"x-tier": "advanced"})
    ca_bundle: str | None = Field(default=None, description="CA bundle to trust: a PEM file's path, or the PEM text",
                                  json_schema_extra={"x-tier": "advanced"})
    proxy: str | None = Field(default=None, description="HTTPS proxy URL for sign-in and API calls",
                              json_schema_extra={"x-tier": "advanced"})
    timeout_s: float = Field(default=30.0, gt=0, le=300, description="Read timeout per HTTP request, seconds",
                             json_schema_extra={"x-tier": "advanced"})
    item_budget_s: float = Field(default=120.0, gt=0, le=3600,
                                 description="Time one IP may take, retries and rate-limit waits included",
                                 json_schema_extra={"x-tier": "advanced"})
    breaker_threshold: int = Field(
        default=10, ge=0, le=1000,
        description="After this many API calls in a row fail (5xx, refused, timed out), across every worker, "
                    "lookups fail at once as unavailable, with no call, until a test call succeeds; 0: never",
        json_schema_extra={"x-tier": "advanced"})
    breaker_probe_interval_s: float = Field(
        default=30.0, ge=0.1, le=3600,
        description="While calls are held back after failures, one test call goes this often, seconds",
        json_schema_extra={"x-tier": "advanced"})
    store_backend: StoreBackend = Field(default="sqlite", description="Where shared state lives",
                                        json_schema_extra={"x-tier": "advanced"})
    store_url: Secret | None = Field(default=None, description="Redis URL when store_backend is redis",
                                     json_schema_extra={"x-tier": "advanced"})
    cache_ttl_s: float = Field(default=900.0, ge=0, le=86400, description="Result cache lifetime; 0 disables",
                               json_schema_extra={"x-tier": "advanced"})
    rate_limit_per_minute: int = Field(default=100, ge=1, le=100, description="Calls allowed per sliding minute",
                                       json_schema_extra={"x-tier": "advanced"})
    rate_limit_per_hour: int = Field(default=1500, ge=1, le=1500, description="Calls allowed per sliding hour",
                                     json_schema_extra={"x-tier": "advanced"})
    interactive_reserve_percent: int = Field(
        default=10, ge=0, le=50,
        description="Share of each rate-limit window (minute and hour) kept for interactive lookups (a person "
                    "waiting): playbooks and searches never use it. Rounded up to whole calls; 0 (with "
                    "bulk_max_percent 100) turns lanes off",
        json_schema_extra={"x-tier": "advanced"})
    bulk_max_percent: int = Field(
        default=50, ge=1, le=100,
        description="Most of each rate-limit window (minute and hour) that bulk lookups (searches, sweeps) may "
                    "use, so that playbooks keep flowing during a large search. Rounded down, at least one call",
        json_schema_extra={"x-tier": "advanced"})
    interactive_budget_s: float = Field(
        default=15.0, gt=0, le=3600,
        description="Time one interactive lookup may take (a person is waiting), rate-limit waits included; "
                    "never more than item_budget_s",
        json_schema_extra={"x-tier": "advanced"})
    store_unavailable: StoreUnavailable = Field(
        default="local", json_schema_extra={"x-tier": "advanced"},
        description="store_backend redis, when Redis cannot be reached: local goes on with this host's own state "
                    "(every result says degraded, and Redis is tried again every store_retry_s); fail fails each "
                    "lookup as unavailable, with no API call")
    store_retry_s: float = Field(default=5.0, ge=0.1, le=300, json_schema_extra={"x-tier": "advanced"},
                                 description="While Redis is unreachable, how often (seconds) a process tries it again")
    rate_limit_time_scale: float = Field(default=1.0, gt=0, le=1000,
                                         description="Testing only: compress rate-limit windows (emulator)",
                                         json_schema_extra={"x-tier": "testing"})
    rare_device_threshold: int = Field(default=5, ge=1, le=1_000_000,
                                       description="An IP seen on at most this many devices is 'rare' (verdict)",
                                       json_schema_extra={"x-tier": "advanced"})
    novelty_hours: int = Field(default=24, ge=1, le=720,
                               description="An IP first seen within this many hours of a longer window is new",
                               json_schema_extra={"x-tier": "advanced"})

    @model_validator(mode="after")
    def _rules_across_fields(self) -> Settings:
        """The rules across fields (each field's own rule ran in load())."""
        problems = self._across_fields()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _across_fields(self) -> list[str]:
        has_secret = self.client_secret is not None
        has_cert = self.private_key is not None
        if self.auth_mode == "managed_identity":
            given = [name for name in ("client_id", "client_secret", "private_key", "thumbprint", "public_certificate")
                     if getattr(self, name) is not None]
            if given:
                return [f"auth_mode managed_identity signs in as the host's own identity, with no app registration "
                        f"and no credential: remove {', '.join(given)} (a user-assigned identity is named by "
                        "managed_identity_client_id)"]
            return self._store_rule()
        if self.managed_identity_client_id is not None:
            return ["managed_identity_client_id is for auth_mode managed_identity"]
        if self.client_id is None:
            return [f"client_id is required with auth_mode {self.auth_mode}"]
        if self.auth_mode == "delegated":
            given = [name for name in ("client_secret", "private_key", "thumbprint", "public_certificate")
                     if getattr(self, name) is not None]
            if given:
                return [f"auth_mode delegated signs an analyst in as a public client, which sends no "
                        f"credential (Entra ID refuses one: AADSTS700025): remove {', '.join(given)}, or "
                        "use auth_mode application"]
        elif has_secret == has_cert:
            return ["configure either client_secret or private_key (with thumbprint or "
                    "public_certificate), not both and not neither"]
        if has_cert and not (self.thumbprint or self.public_certificate):
            return ["private_key needs thumbprint or public_certificate"]
        return self._store_rule()

    def _store_rule(self) -> list[str]:
        if self.store_backend == "redis" and self.store_url is None:
            return ["store_backend redis needs store_url (redis://host:port/db)"]
        return []

    @property
    def endpoints(self) -> Endpoints:
        return resolve_endpoints(self.cloud, self.region, api_url=self.api_url, login_url=self.login_url,
                                 scope=self.scope)

    def budget_s(self, lane: Lane) -> float:
        """The time one lookup in lane may take: an interactive one its own, shorter, budget."""
        if lane == "interactive":
            return min(self.interactive_budget_s, self.item_budget_s)
        return self.item_budget_s

    @property
    def uses_certificate(self) -> bool:
        return self.private_key is not None

    @classmethod
    def load(cls, values: Mapping[str, Any]) -> Settings:
        """Validate raw configuration; any problem becomes one ConfigurationError naming the fields."""
        cleaned = {k: v for k, v in values.items() if v is not None and v != ""}
        try:
            return load(cls, cleaned, _FIELD_CHECKS)
        except ShapeError as exc:
            raise ConfigurationError(exc.describe("configuration")) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed to values the code checked (the rules across fields run
        again; each field's own rule, a private key's parsing say, does not: the Splunk add-on calls
        this for every IP). A secret given as a str becomes a Secret, as validation would make it."""
        secrets = {name: Secret(value) for name, value in changes.items()
                   if name in _SECRETS and isinstance(value, str)}
        copy = self.model_copy(update={**changes, **secrets})
        problems = copy._across_fields()
        if problems:
            raise ShapeError(problems)
        return copy


def _tenant(value: str) -> str:
    value = value.strip()
    if not (_GUID.match(value) or _TENANT_DOMAIN.match(value)):
        raise ValueError("must be a GUID or a domain name such as contoso.onmicrosoft.com")
    return value


def _client(value: str) -> str:
    value = value.strip()
    if not _GUID.match(value):
        raise ValueError("must be the application (client) ID, a GUID")
    return value


def _thumbprint(value: str) -> str:
    value = value.replace(":", "").strip()
    if not _THUMBPRINT.match(value):
        raise ValueError("must be the certificate's SHA-1 thumbprint: 40 hex digits")
    return value.upper()


def _https(value: str) -> str | None:
    if value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (requests would send them instead of the token)")
    return value.rstrip("/")


def _proxy(value: str) -> str | None:
    if value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// proxy URL")
    return value


def _ca_bundle(value: str) -> str | None:
    """A path to a PEM file, or the PEM text itself (what XSOAR and Cortex users paste). Text is kept as
    text: the transport builds its TLS trust from it in memory (connector.trust), so no file is written
    for it where another local user could plant or swap one."""
    if value.strip() == "":
        return None
    if PEM_CERTIFICATE in value:
        return pem_certificates(value)
    path = Path(value).expanduser()
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the CA bundle file ({type(exc).__name__})") from None
    if PEM_CERTIFICATE not in text:
        raise ValueError("is not a PEM file of certificates")
    return str(path)


def _private_key(value: Secret) -> Secret | None:
    key = _secret(value)
    if key is None:
        return None
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(key.get_secret_value().encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("is not an unencrypted PEM private key") from None
    return key


def _certificate(value: str) -> str | None:
    if value == "":
        return None
    from cryptography.x509 import load_pem_x509_certificate

    try:
        load_pem_x509_certificate(value.encode())
    except ValueError:
        raise ValueError("is not a PEM certificate") from None
    return value


def _secret(value: Secret) -> Secret | None:
    """An empty secret is no secret (forms send "" for a field left blank)."""
    return None if value.get_secret_value() == "" else value


_FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "tenant_id": _tenant, "client_id": _client, "managed_identity_client_id": _client,
    "thumbprint": _thumbprint, "api_url": _https, "login_url": _https,
    "proxy": _proxy, "ca_bundle": _ca_bundle, "private_key": _private_key, "public_certificate": _certificate,
    "client_secret": _secret, "store_url": _secret,
}
"""Settings' per-field rules, run by load() on the values given (its model validator then checks across fields)."""


def pem_certificates(text: str) -> str:
    """PEM certificates given as text, checked and trimmed (one spelling per bundle, however pasted)."""
    from cryptography.x509 import load_pem_x509_certificates

    try:
        load_pem_x509_certificates(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("holds PEM text that is not a list of certificates") from None
    return text.strip() + "\n"
