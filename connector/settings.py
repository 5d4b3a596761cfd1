"""The connector's configuration, validated before any network traffic.

Field names are manifest.json's configuration fields (a test keeps the two in step). Secrets are
pydantic SecretStr so that a repr, a log line or a validation error can never print them.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.endpoints import Cloud, Endpoints, Region, resolve_endpoints
from connector.errors import ConfigurationError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TENANT_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"

StoreBackend = Literal["sqlite", "redis", "memory"]
AuthMode = Literal["application", "delegated"]


class Settings(BaseModel):
    """Everything the core needs to reach one tenant's Defender API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(description="Directory (tenant) ID: a GUID, or a verified domain name")
    client_id: str = Field(description="Application (client) ID of the app registration")
    client_secret: SecretStr | None = Field(default=None, description="Client secret (or use a certificate)")
    private_key: SecretStr | None = Field(default=None, description="Certificate private key, PEM")
    thumbprint: str | None = Field(default=None, description="SHA-1 thumbprint of the certificate, hex")
    public_certificate: str | None = Field(default=None, description="The certificate, PEM (instead of thumbprint)")
    auth_mode: AuthMode = Field(
        default="application",
        description="application: the app signs in with its secret or certificate (application Ip.Read.All); "
                    "delegated: an analyst signs in with a device code (mde-ipstats login, or the start/complete "
                    "sign in actions) and lookups run as that person (delegated Ip.Read.All and the View data "
                    "role); tenant_id and client_id only, no secret")
    cloud: Cloud = Field(default="commercial", description="Microsoft cloud the tenant lives in")
    region: Region = Field(default="auto", description="Geo API host nearest the tenant's data")
    api_url: str | None = Field(default=None, description="Override: Defender API base URL")
    login_url: str | None = Field(default=None, description="Override: Entra ID sign-in host")
    scope: str | None = Field(default=None, description="Override: token scope")
    ca_bundle: str | None = Field(default=None, description="CA bundle to trust: a PEM file's path, or the PEM text")
    proxy: str | None = Field(default=None, description="HTTPS proxy URL for sign-in and API calls")
    timeout_s: float = Field(default=30.0, gt=0, le=300, description="Read timeout per HTTP request, seconds")
    item_budget_s: float = Field(default=120.0, gt=0, le=3600,
                                 description="Time one IP may take, retries and rate-limit waits included")
    store_backend: StoreBackend = Field(default="sqlite", description="Where shared state lives")
    store_url: SecretStr | None = Field(default=None, description="Redis URL when store_backend is redis")
    cache_ttl_s: float = Field(default=900.0, ge=0, le=86400, description="Result cache lifetime; 0 disables")
    rate_limit_per_minute: int = Field(default=100, ge=1, le=100, description="Calls allowed per sliding minute")
    rate_limit_per_hour: int = Field(default=1500, ge=1, le=1500, description="Calls allowed per sliding hour")
    rate_limit_time_scale: float = Field(default=1.0, gt=0, le=1000,
                                         description="Testing only: compress rate-limit windows (emulator)")
    rare_device_threshold: int = Field(default=5, ge=1, le=1_000_000,
                                       description="An IP seen on at most this many devices is 'rare' (verdict)")
    novelty_hours: int = Field(default=24, ge=1, le=720,
                               description="An IP first seen within this many hours of a longer window is new")

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        value = value.strip()
        if not (_GUID.match(value) or _TENANT_DOMAIN.match(value)):
            raise ValueError("must be a GUID or a domain name such as contoso.onmicrosoft.com")
        return value

    @field_validator("client_id")
    @classmethod
    def _client(cls, value: str) -> str:
        value = value.strip()
        if not _GUID.match(value):
            raise ValueError("must be the application (client) ID, a GUID")
        return value

    @field_validator("thumbprint")
    @classmethod
    def _thumbprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.replace(":", "").strip()
        if not _THUMBPRINT.match(value):
            raise ValueError("must be the certificate's SHA-1 thumbprint: 40 hex digits")
        return value.upper()

    @field_validator("api_url", "login_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry a user name or password (requests would send them instead of the token)")
        return value.rstrip("/")

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// proxy URL")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None) -> str | None:
        """A path to a PEM file, or the PEM text itself (what XSOAR and Cortex users paste): text is
        written once to a content-addressed file, since requests verifies against a path."""
        if value is None or value.strip() == "":
            return None
        if PEM_CERTIFICATE in value:
            return str(materialise_pem(value))
        path = Path(value).expanduser()
        try:
            text = path.read_text(encoding="ascii", errors="strict")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the CA bundle file ({type(exc).__name__})") from None
        if PEM_CERTIFICATE not in text:
            raise ValueError("is not a PEM file of certificates")
        return str(path)

    @field_validator("private_key")
    @classmethod
    def _private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            load_pem_private_key(value.get_secret_value().encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("is not an unencrypted PEM private key") from None
        return value

    @field_validator("public_certificate")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from cryptography.x509 import load_pem_x509_certificate

        try:
            load_pem_x509_certificate(value.encode())
        except ValueError:
            raise ValueError("is not a PEM certificate") from None
        return value

    @field_validator("client_secret", "store_url")
    @classmethod
    def _empty_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> Settings:
        has_secret = self.client_secret is not None
        has_cert = self.private_key is not None
        if self.auth_mode == "delegated":
            given = [name for name in ("client_secret", "private_key", "thumbprint", "public_certificate")
                     if getattr(self, name) is not None]
            if given:
                raise ValueError(f"auth_mode delegated signs an analyst in as a public client, which sends no "
                                 f"credential (Entra ID refuses one: AADSTS700025): remove {', '.join(given)}, or "
                                 "use auth_mode application")
        elif has_secret == has_cert:
            raise ValueError("configure either client_secret or private_key (with thumbprint or "
                             "public_certificate), not both and not neither")
        if has_cert and not (self.thumbprint or self.public_certificate):
            raise ValueError("private_key needs thumbprint or public_certificate")
        if self.store_backend == "redis" and self.store_url is None:
            raise ValueError("store_backend redis needs store_url (redis://host:port/db)")
        return self

    @property
    def endpoints(self) -> Endpoints:
        return resolve_endpoints(self.cloud, self.region, api_url=self.api_url, login_url=self.login_url,
                                 scope=self.scope)

    @property
    def uses_certificate(self) -> bool:
        return self.private_key is not None

    @classmethod
    def load(cls, values: Mapping[str, Any]) -> Settings:
        """Validate raw configuration; any problem becomes one ConfigurationError naming the fields."""
        cleaned = {k: v for k, v in values.items() if v is not None and v != ""}
        try:
            return cls.model_validate(cleaned)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(exc)) from None


def materialise_pem(text: str) -> Path:
    """PEM certificates given as text, as a file requests can verify against (named by its digest,
    so every process and run shares one file; certificates are public, the file is still 0600)."""
    from cryptography.x509 import load_pem_x509_certificates

    try:
        load_pem_x509_certificates(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("holds PEM text that is not a list of certificates") from None
    digest = hashlib.sha256(text.strip().encode("ascii")).hexdigest()[:32]
    folder = Path(tempfile.gettempdir()) / f"mde-ipstats-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"ca-{digest}.pem"
    if not path.is_file():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text.strip() + "\n")
        partial.replace(path)
    return path


def describe_validation_error(exc: ValidationError) -> str:
    """A message naming each bad field and why, and never echoing the submitted value."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "configuration"
        reason = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "is not a known configuration field"
        problems.append(f"{field}: {reason}")
    return "Invalid configuration: " + "; ".join(problems)
