"""The platform's managed identity endpoints: App Service / Functions (``IDENTITY_ENDPOINT`` +
``IDENTITY_HEADER``) and the VM instance metadata service (IMDS), served on a plain-HTTP loopback
listener as the real ones are served on the host itself.

- App Service, ``GET /msi/token?api-version=2019-08-01&resource=...`` with ``X-IDENTITY-HEADER``;
  ``client_id`` | ``principal_id`` | ``object_id`` | ``mi_res_id`` names a user-assigned identity, none the
  system-assigned one. 200: ``access_token``, ``expires_on`` and ``not_before`` (epoch seconds, as
  strings), ``resource``, ``token_type``, ``client_id``. Errors: ``{"statusCode", "message",
  "correlationId"}`` (MSAL folds them into ``invalid_scope`` "<statusCode>, <message>").
- IMDS, ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`` with ``Metadata: true``;
  ``client_id`` | ``object_id`` | ``msi_res_id`` (``mi_res_id``). 200 adds ``expires_in`` (a string) and an
  empty ``refresh_token``. Errors: ``{"error", "error_description"}``.

Tokens carry ``roles`` from the identity's app role assignments, ``appid`` (its client id), ``oid`` (its
service principal) and ``xms_mirid`` (its resource id). Like the platform, the endpoint **caches** a token
per identity and resource until it nears expiry (``identity_token_lifetime_s``, 24 h): a role granted
after a token was cached is not in the tokens served until then — "a grant not yet in effect".
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from emulator.clock import EmulatedClock
from emulator.config import DEFENDER_AUDIENCES, KNOWN_RESOURCES, EmulatorConfig
from emulator.directory import Directory, ManagedIdentity
from emulator.messages import Outcome, Request, Response
from emulator.tokens import TokenService

APP_SERVICE_PATH = "/msi/token"
IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_API_VERSION = "2019-08-01"
IMDS_API_VERSIONS = frozenset({"2018-02-01", "2019-08-01"})
REFRESH_MARGIN_S = 300.0
"""A cached token with less than this left (real seconds) is replaced, as the platform does."""


def is_identity_path(path: str) -> bool:
    return path.rstrip("/").lower() in (APP_SERVICE_PATH, IMDS_PATH)


class IdentityEndpoint:
    """Both identity protocols over one host's identities (see the module docstring)."""

    def __init__(self, directory: Directory, tokens: TokenService, clock: EmulatedClock,
                 config: EmulatorConfig) -> None:
        self._directory = directory
        self._tokens = tokens
        self._clock = clock
        self._lifetime_s = config.identity_token_lifetime_s
        self._assigned = {spec.name: spec.assigned for spec in config.identities}
        self._grants: dict[str, set[str]] = {}
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.header = secrets.token_urlsafe(24)

    # ---- scripting ----------------------------------------------------------------------------------

    def identity(self, name: str) -> ManagedIdentity:
        try:
            return self._directory.identities[name]
        except KeyError:
            raise KeyError(f"unknown identity {name!r}; known: {', '.join(sorted(self._directory.identities))}"
                           ) from None

    def set_assigned(self, name: str, assigned: bool) -> None:
        """Attach the identity to the host, or take it away (then the endpoint knows no such identity)."""
        self.identity(name)
        with self._lock:
            self._assigned[name] = assigned

    def grant(self, name: str, role: str) -> None:
        """An app role assignment made now: in the next token the platform issues, not in a cached one."""
        self.identity(name)
        with self._lock:
            self._grants.setdefault(name, set()).add(role)

    def forget_cached_tokens(self) -> None:
        with self._lock:
            self._cache.clear()

    def rotate_header(self) -> str:
        """The platform rotates IDENTITY_HEADER: the old value stops working at once."""
        with self._lock:
            self.header = secrets.token_urlsafe(24)
            return self.header

    def roles(self, identity: ManagedIdentity) -> tuple[str, ...]:
        with self._lock:
            granted = self._grants.get(identity.name, set())
        return tuple(dict.fromkeys((*identity.principal.roles, *sorted(granted))))

    # ---- the protocols ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Outcome:
        if request.method != "GET":
            return Outcome(Response(405, b"", {}, None), detail="method not allowed")
        if request.path.rstrip("/").lower() == APP_SERVICE_PATH:
            return self._app_service(request)
        return self._imds(request)

    def _app_service(self, request: Request) -> Outcome:
        query = dict(request.query)
        supplied = request.header("x-identity-header")
        if not supplied or not secrets.compare_digest(supplied, self.header):
            return self._app_service_error(401, "The request is missing or has an invalid X-IDENTITY-HEADER.",
                                           "bad identity header")
        if query.get("api-version") != APP_SERVICE_API_VERSION:
            return self._app_service_error(400, f"api-version must be {APP_SERVICE_API_VERSION}.", "api-version")
        found = self._select(query, ("client_id", "principal_id", "object_id", "mi_res_id"))
        if isinstance(found, str):
            return self._app_service_error(400, "Unable to load the proper Managed Identity.", found)
        resource = query.get("resource", "").rstrip("/")
        if resource not in KNOWN_RESOURCES:
            return self._app_service_error(
                400, f"AADSTS500011: The resource principal named {resource} was not found in the tenant.",
                "unknown resource", found)
        token, real_expiry, detail = self._token(found, resource)
        body = {"access_token": token, "expires_on": str(int(real_expiry)),
                "not_before": str(int(time.time())),
                "resource": resource, "token_type": "Bearer", "client_id": found.client_id}
        return Outcome(Response.json(200, body), found.client_id, found.principal.tenant_id, detail=detail)

    def _imds(self, request: Request) -> Outcome:
        query = dict(request.query)
        if request.header("metadata").lower() != "true":
            return self._imds_error(400, "invalid_request", "Required metadata header not specified",
                                    "no Metadata header")
        if query.get("api-version") not in IMDS_API_VERSIONS:
            return self._imds_error(400, "invalid_request", "Invalid or missing api-version", "api-version")
        found = self._select(query, ("client_id", "object_id", "msi_res_id", "mi_res_id"))
        if isinstance(found, str):
            return self._imds_error(400, "invalid_request", "Identity not found", found)
        resource = query.get("resource", "").rstrip("/")
        if resource not in KNOWN_RESOURCES:
            return self._imds_error(400, "invalid_resource",
                                    f"AADSTS500011: The resource principal named {resource} was not found.",
                                    "unknown resource", found)
        token, real_expiry, detail = self._token(found, resource)
        expires_in = max(1, int(real_expiry - time.time()))
        body = {"access_token": token, "refresh_token": "", "expires_in": str(expires_in),
                "expires_on": str(int(real_expiry)), "not_before": str(int(time.time())),
                "resource": resource, "token_type": "Bearer", "client_id": found.client_id}
        return Outcome(Response.json(200, body), found.client_id, found.principal.tenant_id, detail=detail)

    # ---- parts -------------------------------------------------------------------------------------

    def _select(self, query: dict[str, str], keys: tuple[str, ...]) -> ManagedIdentity | str:
        """The identity a request names (exactly one selector, or none for system-assigned), or why not."""
        given = [(k, query[k]) for k in keys if query.get(k)]
        if len(given) > 1:
            return "several identity selectors"
        with self._lock:
            attached = [i for i in self._directory.identities.values() if self._assigned.get(i.name)]
        if not given:
            system = [i for i in attached if not i.user_assigned]
            return system[0] if system else "no system-assigned identity on this host"
        key, value = given[0]
        value = value.lower()
        for candidate in attached:
            if candidate.user_assigned and value in (
                    candidate.client_id.lower() if key == "client_id" else "",
                    candidate.object_id.lower() if key in ("principal_id", "object_id") else "",
                    candidate.resource_id.lower() if key.endswith("res_id") else ""):
                return candidate
        return f"no user-assigned identity with {key} {value} on this host"

    def _token(self, identity: ManagedIdentity, resource: str) -> tuple[str, float, str]:
        """(token, its expiry as a real Unix time, log detail): the platform's cached token while it has
        more than REFRESH_MARGIN_S left, else a new one with the identity's roles as they are now."""
        with self._lock:
            cached = self._cache.get((identity.name, resource))
        if cached is not None:
            remaining = cached[1] - self._clock.epoch()
            if remaining > REFRESH_MARGIN_S:
                return cached[0], time.time() + remaining, f"identity {identity.name} (platform cache)"
        tenant = self._directory.tenant_by_id(identity.principal.tenant_id)
        assert tenant is not None
        roles = self.roles(identity) if resource in DEFENDER_AUDIENCES else ()  # Graph: a token, no Defender role
        issued = self._tokens.issue(tenant, identity.principal, resource, roles, via_certificate=True,
                                    lifetime_s=self._lifetime_s, extra_claims={"xms_mirid": identity.resource_id})
        expiry = self._clock.epoch() + issued.expires_in
        with self._lock:
            self._cache[(identity.name, resource)] = (issued.access_token, expiry)
        return issued.access_token, time.time() + issued.expires_in, f"identity {identity.name}"

    @staticmethod
    def _app_service_error(status: int, message: str, detail: str,
                           identity: ManagedIdentity | None = None) -> Outcome:
        body = {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
        return Outcome(Response.json(status, body), identity.client_id if identity else None, detail=detail)

    @staticmethod
    def _imds_error(status: int, error: str, description: str, detail: str,
                    identity: ManagedIdentity | None = None) -> Outcome:
        return Outcome(Response.json(status, {"error": error, "error_description": description}),
                       identity.client_id if identity else None, detail=detail)


def identity_environment(kind: str, base_url: Callable[[], str], header: Callable[[], str]) -> dict[str, str]:
    """The environment variables a platform sets for its identity endpoint, pointing at this emulator."""
    if kind == "app_service":
        return {"IDENTITY_ENDPOINT": base_url() + APP_SERVICE_PATH, "IDENTITY_HEADER": header()}
    if kind == "imds":
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base_url()}
    raise ValueError("kind must be 'app_service' or 'imds'")


def describe_identities(directory: Directory, endpoint: IdentityEndpoint) -> dict[str, Any]:
    """The identities for info(): IDs and roles, never the header."""
    return {name: {"client_id": i.client_id, "object_id": i.object_id, "resource_id": i.resource_id,
                   "user_assigned": i.user_assigned, "roles": list(endpoint.roles(i))}
            for name, i in directory.identities.items()}
