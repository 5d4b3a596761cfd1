"""Delegated sign-in: the device authorization grant, the refresh-token grant and user tokens.

What MSAL's PublicClientApplication needs from Entra ID, and what a test needs to script the person
at the browser:

- `start()` answers `POST /{tenant}/oauth2/v2.0/devicecode` (device_code, user_code,
  verification_uri, expires_in, interval, message).
- `redeem_device_code()` answers the token endpoint's device_code grant: `authorization_pending`
  until someone approves the user code (`approve()`, or the auto-approving user), then tokens;
  `slow_down` when scripted, `authorization_declined`, `expired_token`, `bad_verification_code`.
- `redeem_refresh_token()` answers the refresh_token grant. Each use returns a new refresh token
  and, as Entra documents, does not revoke the old one. A refresh token unused for the inactivity
  window fails with AADSTS700082; `refuse_refresh(user, code)` makes every refresh token the user
  holds so far fail with 50173 (revoked), 70043 (sign-in frequency), 50076/50078 (MFA), 700082
  or 53003, while a fresh sign-in issues tokens that work again.
- Tokens: a v1-shaped access token with `scp`, `upn`, `oid`, `tid`, `appid` (no `roles`); an id
  token (`aud` = client id, `iss`, `sub`, `oid`, `tid`, `preferred_username`, `exp`, `iat`) and
  `client_info` (b64url `{"uid", "utid"}`), from which MSAL builds its account.

Times run on the emulator's token time (`clock.epoch()`), so `advance_clock` ages device codes and
refresh tokens; lifetimes are configured in emulated seconds.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.config import DEFENDER_AUDIENCES, KNOWN_RESOURCES, OIDC_SCOPES, EmulatorConfig
from emulator.directory import AppRegistration, Directory, Tenant, User
from emulator.entra import DEVICE_CODE_GRANT, EntraError
from emulator.pki import b64url
from emulator.tokens import TokenService

__all__ = ["DEVICE_CODE_GRANT", "REFUSAL_CODES", "Delegation", "parse_scope"]
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"  # no vowels, no look-alikes
_FLOW_LIMIT = 10_000


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _invalid_grant(code: int, message: str, suberror: str | None = None) -> EntraError:
    return EntraError(400, "invalid_grant", code, message, suberror=suberror)


# What a refresh that Entra refuses looks like, per AADSTS code (refuse_refresh()).
REFUSAL_CODES: dict[int, str] = {
    700082: "expired due to inactivity",
    50173: "revoked",
    70043: "sign-in frequency",
    50076: "MFA required",
    50078: "MFA expired",
    53003: "blocked by Conditional Access",
}


@dataclass(frozen=True)
class ScopeRequest:
    resource: str                    # e.g. https://api.securitycenter.microsoft.com
    permissions: tuple[str, ...]     # as requested: (".default",) or named permissions
    echoed: str                      # the `scope` the token response carries

    @property
    def text(self) -> str:
        return " ".join(f"{self.resource}/{p}" for p in self.permissions)


@dataclass
class DeviceFlow:
    device_code: str
    user_code: str
    client_id: str
    tenant_id: str
    scope: ScopeRequest
    expires_at: float                # token time (epoch seconds)
    polls: int = 0
    state: str = "pending"           # pending | approved | declined
    user: str | None = None
    slow_down: int = 0               # the next N polls answer slow_down


@dataclass
class RefreshGrant:
    user: str
    client_id: str
    tenant_id: str
    scope: ScopeRequest
    serial: int
    issued_at: float                 # token time


@dataclass
class _Refusal:
    serial: int                      # refresh tokens with a serial up to this one are refused
    code: int
    at: float


@dataclass
class _Settings:
    auto_user: str | None
    auto_polls: int
    public_client: dict[str, bool] = field(default_factory=dict)   # client_id -> flag
    blocked_device_flow: set[str] = field(default_factory=set)     # user names


def parse_scope(scope: str) -> ScopeRequest:
    """One resource's scopes plus OIDC ones, as Entra's v2 endpoint accepts them."""
    words = scope.split()
    if not words:
        raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                                                         "'scope'.")
    resource_scopes = [w for w in words if w.lower() not in OIDC_SCOPES]
    if not resource_scopes or any("/" not in w for w in resource_scopes):
        raise EntraError(400, "invalid_scope", 70011,
                         "The provided request must include a 'scope' input parameter. The provided value for the "
                         f"input parameter 'scope' is not valid. The scope {scope} is not valid.")
    resources = {w.rsplit("/", 1)[0] for w in resource_scopes}
    if len(resources) != 1:
        raise EntraError(400, "invalid_request", 28000,
                         "Provided value for the input parameter scope is not valid because it contains more "
                         "than one resource. Scope " + scope + " is not valid.")
    resource = resources.pop()
    if resource not in KNOWN_RESOURCES:
        raise EntraError(400, "invalid_resource", 500011,
                         f"The resource principal named {resource} was not found in the tenant. This can happen "
                         "if the application has not been installed by the administrator of the tenant or "
                         "consented to by any user in the tenant.")
    permissions = tuple(w.rsplit("/", 1)[1] for w in resource_scopes)
    if ".default" in permissions and len(permissions) > 1:
        raise EntraError(400, "invalid_scope", 70011,
                         f"The provided value for the input parameter 'scope' is not valid. The scope {scope} "
                         "combines /.default with other permissions of the same resource.")
    # Echo the resource scopes verbatim (plus the OIDC ones asked for, except offline_access), so
    # that MSAL's cache entry matches the scope the client asked for.
    echoed = " ".join(w for w in words if w.lower() != "offline_access")
    return ScopeRequest(resource, permissions, echoed)


class Delegation:
    def __init__(self, directory: Directory, tokens: TokenService, config: EmulatorConfig,
                 base_url: Any) -> None:
        self._directory = directory
        self._tokens = tokens
        self._clock = tokens.clock
        self._config = config
        self._base_url = base_url
        self._lock = threading.Lock()
        self._flows: dict[str, DeviceFlow] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._issued_codes: list[str] = []
        self._serial = 0
        self._refusals: dict[str, _Refusal] = {}
        self._settings = _Settings(config.device_auto_approve, config.device_auto_approve_polls,
                                   {a.client_id: a.public_client for a in directory.apps.values()})

    # ---- the device authorization endpoint ------------------------------------------------

    def start(self, tenant: Tenant, app: AppRegistration, scope: str) -> dict[str, Any]:
        request = parse_scope(scope)
        expires_in = max(1, math.ceil(self._clock.to_real(self._config.device_code_lifetime_s) - 1e-9))
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        flow = DeviceFlow(device_code="DAQABAAEAAAD" + b64url(secrets.token_bytes(96)), user_code=user_code,
                          client_id=app.client_id, tenant_id=tenant.tenant_id, scope=request,
                          expires_at=self._clock.epoch() + expires_in)
        with self._lock:
            self._forget_expired()
            self._flows[flow.device_code] = flow
            self._issued_codes.append(flow.device_code)
        uri = f"{self._base_url()}/devicelogin"
        return {"user_code": user_code, "device_code": flow.device_code, "verification_uri": uri,
                "expires_in": expires_in, "interval": self._config.device_code_interval_s,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
                           "to authenticate."}

    def _forget_expired(self) -> None:
        if len(self._flows) < _FLOW_LIMIT:
            return
        now = self._clock.epoch()
        for code in [c for c, f in self._flows.items() if f.expires_at <= now]:
            del self._flows[code]

    # ---- the token endpoint's grants --------------------------------------------------------

    def public_client(self, app: AppRegistration) -> bool:
        with self._lock:
            return self._settings.public_client.get(app.client_id, False)

    def redeem_device_code(self, tenant: Tenant, app: AppRegistration,
                           device_code: str) -> tuple[dict[str, Any], User]:
        with self._lock:
            flow = self._flows.get(device_code)
            if flow is None or flow.client_id != app.client_id or flow.tenant_id != tenant.tenant_id:
                raise EntraError(400, "bad_verification_code", 70018,
                                 "The provided value for the input parameter 'device_code' is not valid.")
            if self._clock.epoch() >= flow.expires_at:
                del self._flows[device_code]
                raise EntraError(400, "expired_token", 70019, "Verification code expired.")
            flow.polls += 1
            if flow.slow_down > 0:
                flow.slow_down -= 1
                raise EntraError(400, "slow_down", 70016,
                                 "OAuth 2.0 device flow error. Polling too frequently; slow down.")
            auto = self._settings.auto_user
            if flow.state == "pending" and auto is not None and flow.polls >= self._settings.auto_polls:
                flow.state, flow.user = "approved", auto
            if flow.state == "pending":
                raise EntraError(400, "authorization_pending", 70016,
                                 "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
            del self._flows[device_code]
            if flow.state == "declined":
                raise EntraError(400, "authorization_declined", 65004,
                                 "User declined to consent to access the app.")
            assert flow.user is not None
            user = self._directory.user(flow.user)
            if user.name in self._settings.blocked_device_flow:
                raise _invalid_grant(53003, "Access has been blocked by Conditional Access policies. The access "
                                            "policy does not allow token issuance.")
        granted = self._granted(app, flow.scope)
        return self._issue(tenant, app, user, flow.scope, granted), user

    def redeem_refresh_token(self, tenant: Tenant, app: AppRegistration, refresh_token: str,
                             scope: str | None) -> tuple[dict[str, Any], User]:
        with self._lock:
            grant = self._refresh.get(refresh_token)
            refusal = self._refusals.get(grant.user) if grant else None
        if grant is None:
            raise _invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
        if grant.client_id != app.client_id or grant.tenant_id != tenant.tenant_id:
            raise _invalid_grant(70000, "Provided grant is invalid or malformed.")
        user = self._directory.user(grant.user)
        request = parse_scope(scope) if scope else grant.scope
        if refusal is not None and grant.serial <= refusal.serial:
            raise self._refusal_error(refusal, grant, request)
        inactivity = self._clock.to_real(self._config.refresh_token_inactivity_s)
        if self._clock.epoch() - grant.issued_at >= inactivity:
            raise self._inactive(grant)
        granted = self._granted(app, request)
        return self._issue(tenant, app, user, request, granted), user

    def _inactive(self, grant: RefreshGrant) -> EntraError:
        days = self._config.refresh_token_inactivity_s / 86_400
        return _invalid_grant(700082, "The refresh token has expired due to inactivity. The token was issued on "
                                      f"{_when(grant.issued_at)} and was inactive for {days:g}.00:00:00.",
                              "bad_token")

    def _refusal_error(self, refusal: _Refusal, grant: RefreshGrant, request: ScopeRequest) -> EntraError:
        issued = _when(grant.issued_at)
        if refusal.code == 700082:
            return self._inactive(grant)
        if refusal.code == 50173:
            return _invalid_grant(50173, "The provided grant has expired due to it being revoked, a fresh auth "
                                         "token is needed. The user might have changed or reset their password. "
                                         f"The grant was issued on '{issued}' and the TokensValidFrom date "
                                         f"(before which tokens are not valid) for this user is "
                                         f"'{_when(refusal.at)}'.", "bad_token")
        if refusal.code == 70043:
            return _invalid_grant(70043, "The refresh token has expired or is invalid due to sign-in frequency "
                                         f"checks by conditional access. The token was issued on {issued} and the "
                                         "maximum allowed lifetime for this request is 3600.", "bad_token")
        if refusal.code == 50076:
            return _invalid_grant(50076, "Due to a configuration change made by your administrator, or because "
                                         "you moved to a new location, you must use multi-factor authentication "
                                         f"to access '{request.resource}'.", "basic_action")
        if refusal.code == 50078:
            return _invalid_grant(50078, "Presented multi-factor authentication has expired due to policies "
                                         "configured by your administrator, you must refresh your multi-factor "
                                         f"authentication to access '{request.resource}'.", "basic_action")
        return _invalid_grant(53003, "Access has been blocked by Conditional Access policies. The access policy "
                                     "does not allow token issuance.")

    def _granted(self, app: AppRegistration, request: ScopeRequest) -> tuple[str, ...]:
        consented = app.delegated if request.resource in DEFENDER_AUDIENCES else ("User.Read",)
        wanted = consented if request.permissions == (".default",) else request.permissions
        if not consented or any(p not in consented for p in wanted):
            raise _invalid_grant(65001, f"The user or administrator has not consented to use the application with "
                                        f"ID '{app.client_id}' named '{app.display_name}'. Send an interactive "
                                        "authorization request for this user and resource.", "consent_required")
        return tuple(wanted)

    def _issue(self, tenant: Tenant, app: AppRegistration, user: User, request: ScopeRequest,
               granted: tuple[str, ...]) -> dict[str, Any]:
        pairwise = b64url(hashlib.sha256(f"{user.object_id}/{app.client_id}".encode()).digest())[:43]
        access = self._tokens.issue(tenant, app, request.resource, (), via_certificate=False, extra_claims={
            "oid": user.object_id, "sub": pairwise, "idtyp": "user", "appidacr": "0", "scp": " ".join(granted),
            "upn": user.upn, "unique_name": user.upn, "name": user.display_name, "amr": ["pwd", "mfa"],
            "idp": TokenService.issuer(tenant.tenant_id)})
        now = int(self._clock.epoch())
        id_token = self._tokens.sign({
            "aud": app.client_id, "iss": f"{self._base_url()}/{tenant.tenant_id}/v2.0", "iat": now, "nbf": now,
            "exp": now + access.expires_in, "name": user.display_name, "oid": user.object_id,
            "preferred_username": user.upn, "sub": pairwise, "tid": tenant.tenant_id, "ver": "2.0",
            "uti": b64url(secrets.token_bytes(16))})
        refresh_token = "0.A" + b64url(secrets.token_bytes(180))
        with self._lock:
            self._serial += 1
            self._refresh[refresh_token] = RefreshGrant(user.name, app.client_id, tenant.tenant_id, request,
                                                        self._serial, self._clock.epoch())
        client_info = b64url(json.dumps({"uid": user.object_id, "utid": tenant.tenant_id}).encode())
        return {"token_type": "Bearer", "scope": request.echoed, "expires_in": access.expires_in,
                "ext_expires_in": access.expires_in, "access_token": access.access_token,
                "refresh_token": refresh_token, "id_token": id_token, "client_info": client_info}

    # ---- scripting the person and the tenant (control endpoint, Emulator methods) ----------

    def pending(self) -> list[dict[str, Any]]:
        """Device codes waiting for someone (no device codes: they are the client's secret)."""
        now = self._clock.epoch()
        with self._lock:
            return [{"user_code": f.user_code, "client_id": f.client_id, "tenant_id": f.tenant_id,
                     "scope": f.scope.text, "polls": f.polls, "state": f.state,
                     "expires_in_s": max(0.0, round(f.expires_at - now, 3))}
                    for f in self._flows.values() if f.expires_at > now]

    def _flow(self, user_code: str) -> DeviceFlow:
        wanted = user_code.replace("-", "").strip().upper()
        for flow in self._flows.values():
            if flow.user_code == wanted:
                return flow
        raise KeyError(f"no device code with user code {user_code!r}")

    def approve(self, user_code: str, user: str) -> None:
        person = self._directory.user(user)
        with self._lock:
            flow = self._flow(user_code)
            if flow.expires_at <= self._clock.epoch():
                raise ValueError(f"user code {user_code!r} has expired")
            if person.tenant_id != flow.tenant_id:
                raise ValueError(f"user {user!r} is not in the tenant the code was issued for")
            flow.state, flow.user = "approved", person.name

    def decline(self, user_code: str) -> None:
        with self._lock:
            self._flow(user_code).state = "declined"

    def expire(self, user_code: str) -> None:
        with self._lock:
            self._flow(user_code).expires_at = 0.0

    def slow_down(self, user_code: str, polls: int = 1) -> None:
        if polls < 1:
            raise ValueError("polls must be >= 1")
        with self._lock:
            self._flow(user_code).slow_down += polls

    def set_auto_approve(self, user: str | None, after_polls: int = 2) -> None:
        if user is not None:
            self._directory.user(user)
        if after_polls < 1:
            raise ValueError("after_polls must be >= 1")
        with self._lock:
            self._settings.auto_user, self._settings.auto_polls = user, after_polls

    def refuse_refresh(self, user: str, code: int) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"code must be one of {sorted(REFUSAL_CODES)}")
        name = self._directory.user(user).name
        with self._lock:
            self._refusals[name] = _Refusal(self._serial, code, self._clock.epoch())

    def block_device_flow(self, user: str, blocked: bool = True) -> None:
        name = self._directory.user(user).name
        with self._lock:
            if blocked:
                self._settings.blocked_device_flow.add(name)
            else:
                self._settings.blocked_device_flow.discard(name)

    def set_public_client(self, app: AppRegistration, enabled: bool) -> None:
        with self._lock:
            self._settings.public_client[app.client_id] = enabled

    def issued_secrets(self) -> dict[str, list[str]]:
        """Every refresh token and device code handed out (for secrets audits of a client)."""
        with self._lock:
            return {"refresh token": list(self._refresh), "device code": list(self._issued_codes)}

    def refresh_tokens_issued(self, user: str | None = None) -> int:
        with self._lock:
            return sum(1 for g in self._refresh.values() if user is None or g.user == user)
