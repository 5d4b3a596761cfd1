"""auth_mode managed_identity: the Azure resource's own identity signs in, and no secret exists anywhere.

On a Function App or an App Service the platform serves tokens at a local endpoint (``IDENTITY_ENDPOINT``,
guarded by ``IDENTITY_HEADER``, which it rotates); on a VM the instance metadata service (IMDS) does.
MSAL's ``ManagedIdentityClient`` speaks both, on the connector's own session (its timeouts and the
item's deadline), asking for the Defender resource of the configured cloud.

Where the tokens live: **only in this process's memory**, never in the state store. The application
mode encrypts its stored cache under a key derived from the credential; here there is no credential to
derive a key from, and a key kept beside the state would protect nothing. Nothing is lost by keeping
them in memory: the endpoint is local and cheap, and the platform caches the token itself (for up to
24 hours), so a fresh process costs one loopback request, and a long-lived worker (a Function's) asks
once, then answers from the process memo shared with the other modes.

What goes wrong, in words: no identity on this host; the identity lacks ``Ip.Read.All`` (with the
exact command that grants it); a grant not yet in the token (the platform keeps serving the token it
cached before the grant until that token expires, up to 24 hours).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from connector.auth import TokenProvider, msal_module, token_claims
from connector.credentials import managed_identity_name
from connector.endpoints import REQUIRED_ROLE
from connector.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    NetworkError,
    PermissionDeniedError,
    UnavailableError,
)
from connector.forbidden import ExplainsForbidden
from connector.redaction import redact, register_secret
from connector.settings import Settings
from connector.state import StateStore
from connector.token_memo import PROCESS_TOKENS

if TYPE_CHECKING:
    import msal

log = logging.getLogger(__name__)

DEFENDER_APP_ID = "fc780465-2017-40d4-a0c5-307022471b92"
"""WindowsDefenderATP, the service principal whose app role Ip.Read.All is granted to the identity."""
PLATFORM_CACHE_HOURS = 24
"""How long the platform may keep serving a managed identity token it cached (the token's lifetime)."""
_GRAPH_HOSTS = {"commercial": "graph.microsoft.com", "gcc": "graph.microsoft.com",
                "gcc-high": "graph.microsoft.us", "dod": "dod-graph.microsoft.us"}
_NO_IDENTITY_HINT = ("enable one: `az functionapp identity assign -g <resource-group> -n <function-app>` (a VM: "
                     "`az vm identity assign`), or name an assigned user-assigned identity in "
                     "managed_identity_client_id")

_PROCESS_KEY = os.urandom(32)
"""The memo key's salt (TokenProvider derives the memo's name from a key): nothing is encrypted with it,
because nothing of this mode is ever stored."""


def identity_source() -> str:
    """Which platform endpoint MSAL will ask, by the environment it finds: 'app_service', 'vm' (IMDS), ..."""
    module = msal_module().managed_identity
    source = module.get_managed_identity_source()
    names = {module.APP_SERVICE: "app_service", module.SERVICE_FABRIC: "service_fabric",
             module.MACHINE_LEARNING: "machine_learning", module.AZURE_ARC: "azure_arc",
             module.CLOUD_SHELL: "cloud_shell", module.DEFAULT_TO_VM: "vm"}
    return names.get(source, "vm")


def grant_command(object_id: str, cloud: str = "commercial") -> str:
    """One Azure CLI command (bash) that grants Ip.Read.All to the identity whose service principal has
    ``object_id``: a Microsoft Graph app role assignment on WindowsDefenderATP, the role looked up by name."""
    graph = _GRAPH_HOSTS.get(cloud, "graph.microsoft.com")
    lookup = f"az ad sp show --id {DEFENDER_APP_ID}"
    return (f"az rest --method POST --uri https://{graph}/v1.0/servicePrincipals/{object_id}/appRoleAssignments "
            f"--body \"{{\\\"principalId\\\":\\\"{object_id}\\\",\\\"resourceId\\\":\\\"$({lookup} --query id -o tsv)"
            f"\\\",\\\"appRoleId\\\":\\\"$({lookup} --query \"appRoles[?value=='{REQUIRED_ROLE}'].id\" -o tsv)"
            "\\\"}\"")


def who(claims: dict[str, Any]) -> str:
    """The identity a token names, for messages: its client id and its service principal's object id."""
    client = claims.get("appid") or claims.get("azp") or "unknown"
    return f"managed identity {client} (object id {claims.get('oid') or 'unknown'})"


def missing_role_error(claims: dict[str, Any], settings: Settings, **fields: Any) -> PermissionDeniedError:
    """The identity's token has no Ip.Read.All: never granted, or granted after the platform cached the
    token. Which of the two the connector cannot see (only Microsoft Graph can), so it says both, with the
    exact command and the moment by which a grant made now shows up at the latest."""
    object_id = str(claims.get("oid") or "<object id: az functionapp identity show --query principalId -o tsv>")
    issued, expires = _when(claims.get("iat")), _when(claims.get("exp"))
    roles = ", ".join(str(r) for r in claims.get("roles") or []) or "none"
    return PermissionDeniedError(
        f"The {who(claims)} has no {REQUIRED_ROLE} in its token (roles: {roles}). If it was never granted, grant "
        f"the WindowsDefenderATP application permission {REQUIRED_ROLE} to it (there is no portal page for a "
        f"managed identity): {grant_command(object_id, settings.cloud)} . If it was granted after this token was "
        f"issued ({issued}), it is not in effect yet: the platform caches managed identity tokens for up to "
        f"{PLATFORM_CACHE_HOURS} hours and keeps serving this one until it expires ({expires}); restarting the app "
        "does not refresh the platform's cache.", **fields)


def _when(epoch: Any) -> str:
    try:
        return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError):
        return "unknown"


class ManagedIdentityTokenProvider(TokenProvider):
    """The managed identity's token: from the process memo, else MSAL's ManagedIdentityClient (one per
    process and identity, keeping its own in-memory cache), never from or into the state store."""

    CACHE_PREFIX = "msal-managed-identity"
    LOCK_PREFIX = "token-managed-identity"

    def __init__(self, settings: Settings, session: requests.Session, store: StateStore) -> None:
        super().__init__(settings, session, store)
        self._resource = settings.endpoints.scope.removesuffix("/.default")
        self._memo_key = f"{self.CACHE_PREFIX}:{self._resource}:{managed_identity_name(settings)}"
        self._mi_client: msal.ManagedIdentityClient | None = None
        self._mi_cache: msal.TokenCache | None = None

    def _cache_secret(self) -> bytes:
        return _PROCESS_KEY

    def identity(self) -> str:
        return managed_identity_name(self._settings)

    # -- what differs from the application sign-in -----------------------------------------------------

    def _sign_in(self, deadline: float) -> dict[str, Any]:
        """The platform endpoint is local and caches for us: no store, no lock, just MSAL."""
        with self._within(deadline):
            return self._acquire()

    def _acquire(self) -> dict[str, Any]:
        source = identity_source()
        for name in ("IDENTITY_HEADER", "MSI_SECRET"):  # the platform rotates it: mask whatever it is now
            register_secret(os.environ.get(name))
        try:
            result: dict[str, Any] = self._client().acquire_token_for_client(resource=self._resource)
        except ConnectorError:
            raise
        except requests.RequestException as exc:
            raise self._unreachable(exc, source) from None
        except msal_module().ManagedIdentityError as exc:
            raise ConfigurationError(f"The managed identity is not usable here: {redact(str(exc))[:200]}.") from None
        except ValueError as exc:  # the endpoint's answer was not JSON
            raise UnavailableError(f"The managed identity endpoint gave an answer that is not JSON "
                                   f"({type(exc).__name__}); retry later.") from None
        if "access_token" not in result:
            raise self._endpoint_error(result, source)
        return result

    def invalidate(self, token: str) -> None:
        """Forget a token the API refused, here and in MSAL's cache, so the next get() asks the endpoint."""
        PROCESS_TOKENS.drop(self._memo_key, token)
        cache = self._client_cache()
        for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            if item.get("secret") == token:
                cache.remove_at(item)

    # -- MSAL's client -----------------------------------------------------------------------------------

    def _client(self) -> msal.ManagedIdentityClient:
        """MSAL's client, on the connector's session. One per provider is enough: the process memo is what
        a warm worker answers from (MSAL's own cache only serves this provider's retries)."""
        if self._mi_client is None:
            msal = msal_module()
            client_id = self._settings.managed_identity_client_id
            identity = (msal.UserAssignedManagedIdentity(client_id=client_id) if client_id
                        else msal.SystemAssignedManagedIdentity())
            self._mi_cache = msal.TokenCache()
            self._mi_client = msal.ManagedIdentityClient(identity, http_client=self._session,
                                                         token_cache=self._mi_cache)
        return self._mi_client

    def _client_cache(self) -> msal.TokenCache:
        self._client()
        assert self._mi_cache is not None
        return self._mi_cache

    # -- failures in words --------------------------------------------------------------------------------

    def _unreachable(self, exc: requests.RequestException, source: str) -> ConnectorError:
        if source == "vm":
            return ConfigurationError(
                "No managed identity is available on this host: IDENTITY_ENDPOINT and IDENTITY_HEADER are not set "
                "(a Function App or App Service sets them only when it has an identity) and the instance metadata "
                f"service (IMDS) did not answer ({type(exc).__name__}). To fix: {_NO_IDENTITY_HINT}.",
                code="NoManagedIdentity")
        return NetworkError(f"The managed identity endpoint (IDENTITY_ENDPOINT) could not be reached "
                            f"({type(exc).__name__}); retry later.")

    def _endpoint_error(self, result: dict[str, Any], source: str) -> ConnectorError:
        """MSAL folds the platform's answer into an OAuth2-shaped dict: App Service's into
        ``invalid_scope`` with "<statusCode>, <message>", IMDS's as it came."""
        error = str(result.get("error", "unknown_error"))
        description = redact(str(result.get("error_description", "")))[:300]
        status, _, message = description.partition(", ")
        lowered = description.lower()
        named = (f"user-assigned identity {self._settings.managed_identity_client_id}"
                 if self._settings.managed_identity_client_id else "system-assigned identity")
        if "identity not found" in lowered or "unable to load the proper managed identity" in lowered \
                or (source == "vm" and error == "invalid_request" and "identity" in lowered):
            return ConfigurationError(
                f"This host has no {named} (the identity endpoint said: {message or description}). To fix: "
                f"{_NO_IDENTITY_HINT}.", code="NoManagedIdentity")
        if status in ("401", "403"):
            return AuthenticationError(
                f"The managed identity endpoint refused the request ({status}: {message}): IDENTITY_HEADER does "
                "not match the platform's; restart the app so that it reads the current one.", code=f"HTTP{status}")
        if status.startswith("5") or status == "429" or error in ("server_error", "temporarily_unavailable"):
            return UnavailableError(f"The managed identity endpoint failed ({description}); retry later.",
                                    code=error)
        return ConfigurationError(
            f"The managed identity endpoint refused a token for {self._resource} ({error}: {description}): check "
            "the cloud setting and the scope override.", code=error)


class ManagedIdentityMdeClient(ExplainsForbidden):
    """The API client for a managed identity: a 403 whose token lacks Ip.Read.All names the identity and
    says how to grant the permission (and how long a grant can take to show), instead of the app
    registration's consent steps."""

    def explain_forbidden(self, exc: PermissionDeniedError, deadline: float) -> PermissionDeniedError | None:
        claims = token_claims(self._tokens.get(deadline))
        if REQUIRED_ROLE in (claims.get("roles") or []):
            return None
        return missing_role_error(claims, self._settings, http_status=403, code=exc.code,
                                  correlation_id=exc.correlation_id)
