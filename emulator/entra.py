"""The emulated Entra ID: OIDC discovery, JWKS, the v2.0 token endpoint (client credentials here;
the device_code and refresh_token grants in delegation.py) and the device authorization endpoint.

Errors carry Entra's body shape (`error`, `error_description` beginning with an AADSTS code and
ending with trace/correlation ids and a timestamp, `error_codes`, `timestamp`, `trace_id`,
`correlation_id`, `error_uri`) and its status codes: 400 for request errors, 401 `invalid_client`
for failed client authentication. MSAL returns 4xx answers to the caller as a dict and raises on
5xx; discovery errors make the ConfidentialClientApplication constructor raise ValueError.

Check order at the token endpoint: tenant, method, grant_type, client_id, `resource`, scope
syntax, application, client credential, scope's resource.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from emulator.config import DEFENDER_AUDIENCES, KNOWN_RESOURCES
from emulator.directory import AppRegistration, Directory, Tenant
from emulator.messages import Outcome, Request, Response
from emulator.tokens import TokenService

if TYPE_CHECKING:
    from emulator.delegation import Delegation

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)
_ASSERTION_SKEW_S = 300
_CERT_DOCS = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _iso7(epoch: float) -> str:
    moment = datetime.fromtimestamp(int(epoch), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{round((epoch % 1) * 1e7) % 10_000_000:07d}Z"


class EntraError(Exception):
    def __init__(self, status: int, error: str, code: int, message: str, codes: list[int] | None = None,
                 suberror: str | None = None) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message
        self.codes = codes or [code]
        self.suberror = suberror


class Entra:
    def __init__(self, directory: Directory, tokens: TokenService, base_url: Callable[[], str],
                 delegation: Delegation | None = None, refresh_in_s: float | None = None) -> None:
        self._directory = directory
        self._tokens = tokens
        self._base_url = base_url
        self._delegation = delegation
        self._refresh_in_s = refresh_in_s

    # ---- routing -------------------------------------------------------------------------

    @staticmethod
    def classify(path: str) -> tuple[str, str] | None:
        """(kind, tenant segment) for Entra paths: kind is 'discovery', 'jwks', 'instance', 'token' or
        'devicecode'."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "":
            return None
        tenant, rest = parts[1], "/".join(parts[2:]).lower()
        if rest == "v2.0/.well-known/openid-configuration":
            return "discovery", tenant
        if rest in ("discovery/v2.0/keys", "discovery/keys"):
            return "jwks", tenant
        if rest == "discovery/instance" and tenant.lower() == "common":
            return "instance", tenant
        if rest == "oauth2/v2.0/token":
            return "token", tenant
        if rest == "oauth2/v2.0/devicecode":
            return "devicecode", tenant
        return None

    def handle(self, request: Request, kind: str, tenant_key: str) -> Outcome:
        correlation = self.correlation(request)
        try:
            if kind == "instance":
                return Outcome(self._instance(request))
            if kind == "devicecode" and tenant_key.lower() in ("common", "consumers"):
                raise EntraError(400, "invalid_request", 9001023,
                                 "The grant type isn't supported over the /common or /consumers endpoints. Please "
                                 "use the /organizations or tenant-specific endpoint.")
            if kind == "jwks" and tenant_key.lower() == "common":
                return Outcome(Response.json(200, self._tokens.jwks(self._issuer("{tenantid}"))))
            tenant = self._tenant(tenant_key)
            if kind == "discovery":
                return Outcome(Response.json(200, self.openid_configuration(tenant)), tenant_id=tenant.tenant_id)
            if kind == "jwks":
                return Outcome(Response.json(200, self._tokens.jwks(self._issuer(tenant.tenant_id))),
                               tenant_id=tenant.tenant_id)
            if kind == "devicecode":
                return self._devicecode(request, tenant, correlation)
            return self._token(request, tenant, correlation)
        except EntraError as exc:
            return Outcome(self.error_response(exc, correlation), client_id=self.claimed_client(request),
                           detail=str(exc))

    # ---- documents -----------------------------------------------------------------------

    def _issuer(self, tenant_id: str) -> str:
        return f"{self._base_url()}/{tenant_id}/v2.0"

    def openid_configuration(self, tenant: Tenant) -> dict[str, Any]:
        base, tid = self._base_url(), tenant.tenant_id
        return {
            "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self._issuer(tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                                 "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
                                 "c_hash", "email"],
            "kerberos_endpoint": f"{base}/{tid}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def _instance(self, request: Request) -> Response:
        base = self._base_url()
        host = base.split("://", 1)[1]
        return Response.json(200, {
            "tenant_discovery_endpoint": f"{base}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })

    # ---- errors --------------------------------------------------------------------------

    @staticmethod
    def correlation(request: Request) -> str:
        given = request.header("client-request-id")
        return given if _GUID.match(given) else str(uuid.uuid4())

    def error_response(self, exc: EntraError, correlation: str) -> Response:
        trace = str(uuid.uuid4())
        stamp = _stamp(datetime.now(UTC))
        description = (f"AADSTS{exc.code}: {exc.message}\r\nTrace ID: {trace}\r\n"
                       f"Correlation ID: {correlation}\r\nTimestamp: {stamp}")
        body: dict[str, Any] = {
            "error": exc.error,
            "error_description": description,
            "error_codes": exc.codes,
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self._base_url()}/error?code={exc.code}",
        }
        if exc.suberror:
            body["suberror"] = exc.suberror
        return Response.json(exc.status, body, headers={"x-ms-request-id": trace, "client-request-id": correlation,
                    "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _tenant(self, key: str) -> Tenant:
        if not (_GUID.match(key) or _DOMAIN.match(key)):
            raise EntraError(400, "invalid_request", 900023,
                             f"Specified tenant identifier '{key}' is neither a valid DNS name, "
                             "nor a valid external domain.")
        tenant = self._directory.tenant(key)
        if tenant is None:
            raise EntraError(400, "invalid_tenant", 90002,
                             f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID "
                             "and are signing into the correct cloud. Check with your subscription "
                             "administrator, this may happen if there are no active subscriptions for the "
                             "tenant.")
        return tenant

    @staticmethod
    def _missing(name: str) -> EntraError:
        return EntraError(400, "invalid_request", 900144,
                          f"The request body must contain the following parameter: '{name}'.")

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        form: dict[str, str] = {}
        for key, value in parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(key, value)
        return form

    @staticmethod
    def _basic(request: Request) -> tuple[str, str] | None:
        header = request.header("authorization")
        if not header.lower().startswith("basic "):
            return None
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = raw.partition(":")
        return unquote_plus(user), unquote_plus(password)

    def claimed_client(self, request: Request) -> str | None:
        if request.method != "POST":
            return None
        basic = self._basic(request)
        return self._form(request).get("client_id") or (basic[0] if basic else None) or None

    # ---- the token endpoint --------------------------------------------------------------

    def _token(self, request: Request, tenant: Tenant, correlation: str) -> Outcome:
        if request.method != "POST":
            raise EntraError(400, "invalid_request", 900561,
                             f"The endpoint only accepts POST, OPTIONS requests. Received a {request.method} "
                             "request.")
        form = self._form(request)
        basic = self._basic(request)
        grant = form.get("grant_type")
        if not grant:
            raise self._missing("grant_type")
        if grant in (DEVICE_CODE_GRANT, "refresh_token") and self._delegation is not None:
            return self._delegated(grant, form, basic, request, tenant, correlation)
        if grant != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant}'.")
        client_id = form.get("client_id") or (basic[0] if basic else "")
        if not client_id:
            raise self._missing("client_id")
        if "resource" in form:
            raise EntraError(400, "invalid_request", 901002, "The 'resource' request parameter is not supported.")
        scope = form.get("scope", "")
        if not scope:
            raise self._missing("scope")
        scopes = scope.split()
        if len(scopes) != 1:
            raise EntraError(400, "invalid_scope", 70011,
                             "The provided request must include a 'scope' input parameter. The provided value "
                             f"for the input parameter 'scope' is not valid. The scope {scope} is not valid.")
        if not scopes[0].endswith("/.default"):
            raise EntraError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scopes[0]} is not valid. Client credential flows "
                             "must have a scope value with /.default suffixed to the resource identifier "
                             "(application ID URI).")
        app = self._app_for(tenant, client_id)
        credential = self._authenticate(request, form, basic, tenant, app)
        resource = scopes[0].removesuffix("/.default")
        if resource not in KNOWN_RESOURCES:
            raise EntraError(400, "invalid_resource", 500011,
                             f"The resource principal named {resource} was not found in the tenant named "
                             f"{tenant.domain}. This can happen if the application has not been installed by "
                             "the administrator of the tenant or consented to by any user in the tenant. You "
                             "might have sent your authentication request to the wrong tenant.")
        roles = app.roles if resource in DEFENDER_AUDIENCES else ()
        issued = self._tokens.issue(tenant, app, resource, roles, credential != "client_secret")
        answer: dict[str, Any] = {"token_type": "Bearer", "expires_in": issued.expires_in,
                                     "ext_expires_in": issued.expires_in, "access_token": issued.access_token}
        if self._refresh_in_s is not None:  # Entra's hint to renew early (sent for long-lived tokens)
            answer["refresh_in"] = math.ceil(self._refresh_in_s)
        return Outcome(
            Response.json(200, answer,
                          headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache",
                                   "client-request-id": correlation}),
            client_id=app.client_id, tenant_id=tenant.tenant_id, detail=credential)

    # ---- delegated sign-in (state and rules in delegation.py) --------------------------------

    def _app_for(self, tenant: Tenant, client_id: str) -> AppRegistration:
        app = self._directory.app(tenant, client_id) if _GUID.match(client_id) else None
        if app is None:
            raise EntraError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory "
                             f"'{tenant.tenant_id}'. This can happen if the application has not been installed "
                             "by the administrator of the tenant or consented to by any user in the tenant. You "
                             "may have sent your authentication request to the wrong tenant.")
        return app

    def _devicecode(self, request: Request, tenant: Tenant, correlation: str) -> Outcome:
        assert self._delegation is not None
        if request.method != "POST":
            raise EntraError(400, "invalid_request", 900561,
                             f"The endpoint only accepts POST, OPTIONS requests. Received a {request.method} "
                             "request.")
        form = self._form(request)
        client_id = form.get("client_id", "")
        if not client_id:
            raise self._missing("client_id")
        app = self._app_for(tenant, client_id)
        body = self._delegation.start(tenant, app, form.get("scope", ""))
        return Outcome(Response.json(200, body, headers={"Cache-Control": "no-store, no-cache",
                                                         "client-request-id": correlation}),
                       client_id=app.client_id, tenant_id=tenant.tenant_id, detail=f"user_code {body['user_code']}")

    def _delegated(self, grant: str, form: dict[str, str], basic: tuple[str, str] | None, request: Request,
                   tenant: Tenant, correlation: str) -> Outcome:
        """device_code and refresh_token grants: a public client sends no credential (700025 if it
        does); with "Allow public client flows" off, a credential is required (7000218, as 400)."""
        assert self._delegation is not None
        client_id = form.get("client_id") or (basic[0] if basic else "")
        if not client_id:
            raise self._missing("client_id")
        app = self._app_for(tenant, client_id)
        credential = bool(form.get("client_secret") or form.get("client_assertion") or basic)
        if self._delegation.public_client(app):
            if credential:
                raise EntraError(400, "invalid_client", 700025,
                                 "Client is public so neither 'client_assertion' nor 'client_secret' should be "
                                 "presented.")
        elif not credential:
            raise EntraError(400, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        else:
            self._authenticate(request, form, basic, tenant, app)
        if grant == DEVICE_CODE_GRANT:
            code = form.get("device_code") or form.get("code") or ""
            if not code:
                raise self._missing("device_code")
            body, user = self._delegation.redeem_device_code(tenant, app, code)
        else:
            refresh_token = form.get("refresh_token", "")
            if not refresh_token:
                raise self._missing("refresh_token")
            body, user = self._delegation.redeem_refresh_token(tenant, app, refresh_token, form.get("scope"))
        return Outcome(Response.json(200, body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache",
                                                         "client-request-id": correlation}),
                       client_id=app.client_id, tenant_id=tenant.tenant_id,
                       detail=f"{'device_code' if grant == DEVICE_CODE_GRANT else 'refresh_token'} {user.upn}")

    def _authenticate(self, request: Request, form: dict[str, str], basic: tuple[str, str] | None,
                      tenant: Tenant, app: AppRegistration) -> str:
        """Check the client credential; describe it for the request log (e.g. 'client_assertion
        PS256 x5t#S256', or 'client_secret')."""
        assertion = form.get("client_assertion")
        if assertion:
            return self._check_assertion(assertion, form.get("client_assertion_type", ""), tenant, app)
        secret = form.get("client_secret") or (basic[1] if basic else "")
        if not secret:
            raise EntraError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        expected = app.client_secret or ""
        if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise EntraError(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the request is "
                             "the client secret value, not the client secret ID, for a secret added to app "
                             f"'{app.client_id}'.")
        return "client_secret"

    def _check_assertion(self, assertion: str, assertion_type: str, tenant: Tenant,
                         app: AppRegistration) -> str:
        if not assertion_type:
            raise self._missing("client_assertion_type")
        if assertion_type != JWT_BEARER:
            raise EntraError(400, "invalid_request", 50027,
                             f"Invalid client_assertion_type '{assertion_type}'. Only '{JWT_BEARER}' is "
                             "supported.")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        algorithm = header.get("alg")
        thumb_key, digest = ("x5t#S256", "thumbprint_sha256_hex") if "x5t#S256" in header else ("x5t",
                                                                                                "thumbprint_sha1_hex")
        try:
            presented = base64.urlsafe_b64decode(str(header.get(thumb_key, "")) + "==").hex().upper()
        except (binascii.Error, ValueError):
            presented = ""
        registered = getattr(app, digest)
        key_reason = None
        if algorithm not in ("RS256", "PS256"):
            key_reason = f"The signing algorithm '{algorithm}' is not supported."
        elif not registered or not presented or not hmac.compare_digest(presented, registered):
            key_reason = "The key was not found."
        if key_reason:
            raise EntraError(401, "invalid_client", 700027,
                             f"Client assertion failed signature validation. [Reason - {key_reason}, Thumbprint "
                             f"of key used by client: '{presented}', Please visit the Azure Portal, Graph "
                             "Explorer or directly use MS Graph to see configured keys for app Id "
                             f"'{app.client_id}'.] {_CERT_DOCS}")
        assert app.certificate is not None
        public_key = app.certificate.certificate.public_key()
        assert isinstance(public_key, RSAPublicKey)
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion, public_key, algorithms=[str(algorithm)],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_iss": False, "verify_sub": False, "verify_jti": False})
        except jwt.InvalidSignatureError:
            cert = app.certificate.certificate
            found = (f"Start={cert.not_valid_before_utc:%m/%d/%Y %H:%M:%S}, "
                     f"End={cert.not_valid_after_utc:%m/%d/%Y %H:%M:%S}")
            raise EntraError(401, "invalid_client", 7000274,
                             "Key was found, but use of the key to verify the signature failed. [Thumbprint of "
                             f"key used by client: '{presented}', Found key '{found}'] {_CERT_DOCS}") from None
        except jwt.PyJWTError:
            raise EntraError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise EntraError(401, "invalid_client", 700021,
                             f"Client assertion application identifier doesn't match 'client_id' parameter. "
                             f"{_CERT_DOCS}")
        audience = claims.get("aud")
        if isinstance(audience, list):
            if len(audience) != 1:
                raise EntraError(401, "invalid_client", 5002741,
                                 "Number of audience values in the provided client credential exceed maximum "
                                 f"allowed. {len(audience)} audience values provided, maximum allowed is 1.")
            audience = audience[0]
        if not isinstance(audience, str) or audience.rstrip("/").lower() not in self._audiences(tenant):
            raise EntraError(401, "invalid_client", 50012,
                             f"Client assertion audience claim does not match Realm issuer. {_CERT_DOCS}")
        now = time.time()  # the client's clock: assertions are real-time even when the calendar is pinned
        expiry, not_before = claims.get("exp"), claims.get("nbf")
        if (not isinstance(expiry, int | float) or expiry <= now
                or (isinstance(not_before, int | float) and not_before > now + _ASSERTION_SKEW_S)):
            valid_from = _iso7(float(not_before)) if isinstance(not_before, int | float) else _iso7(0)
            expires = _iso7(float(expiry)) if isinstance(expiry, int | float) else _iso7(0)
            raise EntraError(401, "invalid_client", 700024,
                             f"Client assertion is not within its valid time range. Current time: {_iso7(now)}, "
                             f"assertion valid from {valid_from}, expiry time of assertion {expires}. "
                             f"{_CERT_DOCS}")
        return f"client_assertion {algorithm} {thumb_key}"

    def _audiences(self, tenant: Tenant) -> set[str]:
        base = self._base_url().lower()
        names = {tenant.tenant_id.lower(), tenant.domain.lower()}
        return ({f"{base}/{n}/oauth2/v2.0/token" for n in names}
                | {f"{base}/{n}/oauth2/token" for n in names}
                | {f"{base}/{n}/v2.0" for n in names})


