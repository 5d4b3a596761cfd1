"""Delegated access: lookups made as a signed-in analyst (device authorization grant, then silent refresh).

Some SOCs may not grant an application tenant-wide read access; with ``auth_mode: delegated`` the
connector is an MSAL *public client* (tenant and client id only, no secret) and every lookup runs on
behalf of one person, who must hold Defender's "View data" role permission as well as the delegated
``Ip.Read.All`` the app registration was consented.

- Sign-in works on every platform without a redirect URL: ``start_sign_in()`` asks Entra ID for a
  device code and keeps the pending flow (encrypted) in the state store; the person opens the URL
  and types the code; ``complete_sign_in(wait_s)`` polls once (or for a bounded time) and, once the
  person has finished, keeps their tokens. Splitting it in two lets a SOAR platform show the code in
  one action's result and finish in another run, in another process.
- Lookups use the same shared, encrypted token cache as the application mode (under other names,
  so an application token and a user's never mix): a valid access token is used without building an
  MSAL application; otherwise ``acquire_token_silent_with_error`` refreshes it. A refresh Entra ID
  refuses (inactivity, revocation, sign-in frequency, MFA) ends the sign-in: the lookup fails at
  once as ``authentication``, saying to sign in again and how, and so do later lookups, without
  asking Entra ID again.
- The cache key cannot come from a client secret (there is none). It is derived from a random
  32-byte key created once per installation in the state directory (``delegated-cache.key``, 0600,
  directory 0700), so a copy of the state store (an exported asset state, a backup of the SQLite
  file or Redis) is useless without the installation's own key file. A platform that runs each
  action in a fresh container, where no file outlives the run, hands in a key it keeps in its own
  store instead (``run(..., installation_key=...)``).
- One state directory holds one signed-in person; two analysts use two state directories (or two
  connector instances), and a new sign-in replaces the previous person's tokens. Every process reads
  who is signed in from the store at each lookup (``identity``, ``_current_holder``), so a sign-in or
  sign-out by any process takes effect in all of them at once.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connector.auth import TokenProvider, msal_module, token_claims
from connector.endpoints import REQUIRED_ROLE
from connector.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    PermissionDeniedError,
    UnavailableError,
)
from connector.forbidden import ExplainsForbidden
from connector.redaction import RedactingFilter, redact, register_secret
from connector.settings import Settings
from connector.state import StateStore
from connector.state_files import refuse_planted
from connector.stores import private_dir
from connector.token_memo import PROCESS_TOKENS
from connector.transport import connection_failure
from connector.wording import HOW_TO_COMPLETE_SIGN_IN, HOW_TO_SIGN_IN, HOW_TO_START_SIGN_IN

if TYPE_CHECKING:
    import msal

log = logging.getLogger(__name__)

_MSAL_LOGGERS = ("msal.application", "msal.authority", "msal.token_cache", "msal.telemetry", "msal.oauth2cli.oauth2",
                 "msal.oauth2cli.oidc", "msal.oauth2cli.assertion")


def _scrub_msal_logs() -> None:
    """MSAL's token-cache debug log masks refresh tokens but not the device code it redeemed (sent
    as both ``device_code`` and ``code``): scrub every MSAL logger at the source, so whichever
    handler a platform installs receives the masked text."""
    for name in _MSAL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


_scrub_msal_logs()

KEY_FILE = "delegated-cache.key"
_PENDING = ("authorization_pending", "slow_down")

# invalid_grant on a refresh: the sign-in is over, whatever the reason; this says which.
_REFUSED_REFRESH: dict[int, str] = {
    700082: "the sign-in expired: its refresh token went unused for longer than Entra ID allows "
            "(90 days of inactivity)",
    70008: "the sign-in expired",
    50173: "the sign-in was revoked (an administrator or the user revoked the sessions, or the password "
           "changed)",
    70043: "Conditional Access sign-in frequency requires a new sign-in",
    50076: "multi-factor authentication is now required",
    50078: "the multi-factor authentication has expired",
    50079: "the user must register for multi-factor authentication",
    53003: "Conditional Access blocked the token",
}


def delegated_scope(settings: Settings) -> str:
    """The delegated permission by name (``<resource>/Ip.Read.All``) rather than ``/.default``: the
    token response echoes a named scope, so MSAL's cache entry matches the next lookup's request."""
    scope = settings.endpoints.scope
    return scope.removesuffix("/.default") + f"/{REQUIRED_ROLE}" if scope.endswith("/.default") else scope


def installation_key(state_dir: Path) -> bytes:
    """This installation's random key (created on first use, 0600 in a 0700 directory)."""
    folder = private_dir(state_dir)
    path = folder / KEY_FILE
    refuse_planted(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigurationError(f"Cannot create the delegated token key in {folder} ({exc.strerror}): check "
                                 "the state directory.") from None
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(32))
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the delegated token key {path} ({exc.strerror}).") from None
    if len(key) != 32:  # a concurrent first use still writing: wait for it, briefly
        time.sleep(0.05)
        key = path.read_bytes()
    if len(key) != 32:
        raise ConfigurationError(f"The delegated token key {path} is damaged: remove it and sign in again.")
    return key


class SignInStarted(NamedTuple):
    verification_uri: str
    user_code: str
    message: str
    expires_in_s: int
    expires_at: str
    interval_s: int


class SignInProgress(NamedTuple):
    state: str                         # "pending" | "signed_in"
    user: str | None = None
    message: str = ""
    scopes: tuple[str, ...] = ()
    expires_at: str | None = None      # the pending code's expiry


class DelegatedTokenProvider(TokenProvider):
    """The signed-in person's access token; see the module docstring."""

    CACHE_PREFIX = "msal-delegated"
    LOCK_PREFIX = "token-delegated"

    def __init__(self, settings: Settings, session: requests.Session, store: StateStore, state_dir: Path,
                 key: bytes | None = None) -> None:
        self._state_dir = state_dir
        self._given_key = key  # a platform whose containers keep no file keeps the key in its own store
        super().__init__(settings, session, store)
        self._flow_key = f"device-flow:{self._cache_key.split(':', 1)[1]}"
        self._ended_key = f"{self._cache_key}:ended"

    # -- what differs from the application sign-in --------------------------------------------------

    def _cache_secret(self) -> bytes:
        info = (f"{self._settings.tenant_id}|{self._settings.client_id}|{self._settings.endpoints.login_url}"
                "|delegated").encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"mde-ipstats delegated token cache v1",
                    info=info).derive(self._given_key or installation_key(self._state_dir))

    def _requested_scopes(self) -> list[str]:
        return [delegated_scope(self._settings)]

    def _build_application(self, cache: msal.SerializableTokenCache) -> msal.ClientApplication:
        return msal_module().PublicClientApplication(
            self._settings.client_id,
            authority=self._authority,
            token_cache=cache,
            http_client=self._session,
            instance_discovery=self._instance_discovery(),
        )

    def _cached_token(self) -> dict[str, Any] | None:
        if not self._accounts_in_cache():
            return None
        return super()._cached_token()

    def _acquire(self) -> dict[str, Any]:
        """A silent refresh for the signed-in account; nobody signed in fails before any request."""
        if not self._accounts_in_cache():
            raise self._not_signed_in()
        app = self._application()
        with self._token_request_errors():
            accounts = app.get_accounts()
            if not accounts:
                raise self._not_signed_in()
            result = app.acquire_token_silent_with_error(self._scopes, accounts[0])
        if result is None:  # no refresh token left for the account
            raise self._not_signed_in()
        if "access_token" not in result and self._refused(result):
            raise self._end_sign_in(result, accounts[0])
        return dict(result)

    def _accept(self, result: dict[str, Any]) -> str:
        for secret in (result.get("refresh_token"), result.get("id_token")):
            register_secret(secret)
        return super()._accept(result)

    # -- who is signed in -------------------------------------------------------------------------------

    def _accounts_in_cache(self) -> list[dict[str, Any]]:
        return self._entries("Account")

    def signed_in_user(self) -> str | None:
        """The signed-in person's user name (UPN), from the stored cache; no network."""
        self._load_cache()
        accounts = self._accounts_in_cache()
        return str(accounts[0].get("username") or accounts[0].get("local_account_id")) if accounts else None

    def identity(self) -> str:
        """The person signed in now, read from the store, for the result cache: answers are cached per
        person and only served while that person is signed in (a cache hit is no way round signing in,
        or round their role), whichever process signed them in."""
        holder = self._current_holder()
        if holder is None:
            raise self._not_signed_in()
        return holder

    def _current_holder(self) -> str | None:
        self._load_cache()
        return self._loaded_holder()

    def _loaded_holder(self) -> str | None:
        accounts = self._accounts_in_cache()
        if not accounts:
            return None
        return f"user:{accounts[0].get('home_account_id') or accounts[0].get('username')}"

    def _not_signed_in(self) -> AuthenticationError:
        ended = self._store.get(self._ended_key)
        why = ended.decode("utf-8", "replace") if ended else "nobody is signed in for delegated access"
        return AuthenticationError(f"Not signed in: {why}. To fix: {HOW_TO_SIGN_IN}.", code="NotSignedIn")

    @staticmethod
    def _codes(result: dict[str, Any]) -> list[int]:
        codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
        description = str(result.get("error_description", ""))
        if not codes and description.startswith("AADSTS"):
            digits = description[6:].split(":")[0]
            codes = [int(digits)] if digits.isdigit() else []
        return codes

    def _refused(self, result: dict[str, Any]) -> bool:
        return result.get("error") in ("invalid_grant", "interaction_required") or any(
            c in _REFUSED_REFRESH for c in self._codes(result))

    def _end_sign_in(self, result: dict[str, Any], account: dict[str, Any]) -> AuthenticationError:
        """Entra ID refused the refresh: forget the dead tokens and remember why, so that later lookups
        fail at once with the same explanation instead of asking Entra ID again."""
        codes = self._codes(result)
        code = codes[0] if codes else None
        why = _REFUSED_REFRESH.get(code or -1, "Entra ID refused to refresh the sign-in")
        label = f"AADSTS{code}" if code else str(result.get("error", "invalid_grant"))
        user = str(account.get("username") or "the signed-in user")
        reason = f"{why} for {user} ({label})"
        self._forget_tokens()
        self._store.set(self._ended_key, reason.encode())
        return AuthenticationError(f"Delegated sign-in ended: {reason}. To fix: {HOW_TO_SIGN_IN}.", code=label,
                                   correlation_id=str(result["correlation_id"]) if result.get("correlation_id")
                                   else None)

    def _forget_tokens(self) -> None:
        self._store.delete(self._cache_key)
        self._cache = msal_module().SerializableTokenCache()
        self._app = None
        PROCESS_TOKENS.drop(self._memo_key)

    # -- the device authorization grant ---------------------------------------------------------------

    def start_sign_in(self, deadline: float) -> SignInStarted:
        """Ask Entra ID for a device code; keep the flow (encrypted) for complete_sign_in."""
        with self._within(deadline):
            app = self._new_application(msal_module().SerializableTokenCache())
            assert isinstance(app, msal_module().PublicClientApplication)
            try:
                flow: dict[str, Any] = app.initiate_device_flow(scopes=self._scopes)
            except requests.RequestException as exc:
                raise connection_failure(exc, "the sign-in service", self._settings.endpoints.login_url) from None
            except ValueError as exc:  # MSAL: no device_authorization_endpoint, or a body that is not JSON
                raise UnavailableError(f"The sign-in service did not start a device sign-in "
                                       f"({redact(str(exc))[:150]}).") from None
        if "user_code" not in flow:
            raise self._flow_error(flow)
        register_secret(str(flow.get("device_code", "")))
        self._store.set(self._flow_key, self._cipher.encrypt(json.dumps(flow).encode()),
                        ttl_s=float(flow["expires_in"]) + 60)
        return SignInStarted(
            verification_uri=str(flow.get("verification_uri") or flow.get("verification_url") or ""),
            user_code=str(flow["user_code"]), message=str(flow.get("message", "")),
            expires_in_s=int(flow["expires_in"]), expires_at=_iso(float(flow["expires_at"])),
            interval_s=int(flow.get("interval", 5)))

    def complete_sign_in(self, wait_s: float, on_pending: Callable[[SignInProgress], None] | None = None
                         ) -> SignInProgress:
        """Poll for the pending sign-in: once (wait_s 0), or until it ends or wait_s has passed."""
        flow = self._pending_flow()
        if flow is None:
            return self._already_signed_in() or self._raise(AuthenticationError(
                f"No sign-in is in progress (or its code has expired): {_START}.", code="NoSignInInProgress"))
        until = time.time() + max(0.0, wait_s)
        cache = msal_module().SerializableTokenCache()  # the previous person's tokens stay until this one succeeds
        with self._within(time.monotonic() + max(0.0, wait_s) + self._settings.timeout_s + 15):
            app = self._new_application(cache)
            assert isinstance(app, msal_module().PublicClientApplication)
            try:
                with warnings.catch_warnings():  # a person running complete sign in twice quickly is fine
                    warnings.filterwarnings("ignore", message="Attempted too soon")
                    result: dict[str, Any] = app.acquire_token_by_device_flow(
                        flow, exit_condition=lambda f: time.time() >= min(until, float(f.get("expires_at", 0))))
            except requests.RequestException as exc:
                self._keep_flow(flow)
                raise connection_failure(exc, "the sign-in service", self._settings.endpoints.login_url) from None
            except (msal_module().exceptions.MsalServiceError, ValueError) as exc:
                self._keep_flow(flow)
                raise UnavailableError(f"The sign-in service failed while polling ({redact(str(exc))[:150]}); "
                                       f"to check again, {HOW_TO_COMPLETE_SIGN_IN}.") from None
        if "access_token" in result:
            return self._signed_in(result, cache)
        if result.get("error") in _PENDING:
            self._keep_flow(flow)
            if time.time() >= float(flow.get("expires_at", 0)):
                self._store.delete(self._flow_key)
                raise AuthenticationError(f"The code expired before the sign-in was finished: {_START}.",
                                          code="expired_token")
            return SignInProgress(
                "pending", message=f"Waiting for the sign-in: open {flow.get('verification_uri')} in a browser, "
                                   f"enter the code {flow.get('user_code')} and sign in as the analyst whose "
                                   f"access the lookups should use; then {HOW_TO_COMPLETE_SIGN_IN}.",
                expires_at=_iso(float(flow.get("expires_at", 0))))
        if result.get("error") == "bad_verification_code" and self._store.get(self._flow_key) is None:
            # Another run completed this very sign-in a moment ago (and so consumed the code).
            done = self._already_signed_in()
            if done is not None:
                return done
        self._store.delete(self._flow_key)
        raise self._flow_error(result)

    def _already_signed_in(self) -> SignInProgress | None:
        user = self.signed_in_user()
        if user is None:
            return None
        return SignInProgress("signed_in", user=user, message=f"{user} is signed in (no sign-in was pending).")

    @staticmethod
    def _raise(error: ConnectorError) -> SignInProgress:
        raise error

    def _pending_flow(self) -> dict[str, Any] | None:
        blob = self._store.get(self._flow_key)
        if blob is None:
            return None
        try:
            flow: dict[str, Any] = json.loads(self._cipher.decrypt(blob))
        except (InvalidToken, ValueError):
            return None
        register_secret(str(flow.get("device_code", "")))
        return flow

    def _keep_flow(self, flow: dict[str, Any]) -> None:
        """MSAL updates the flow (a longer interval after slow_down, the last attempt): keep that."""
        remaining = float(flow.get("expires_at", 0)) - time.time()
        if remaining > 0:
            self._store.set(self._flow_key, self._cipher.encrypt(json.dumps(flow).encode()), ttl_s=remaining + 60)

    def _signed_in(self, result: dict[str, Any], cache: msal.SerializableTokenCache) -> SignInProgress:
        with self._store.lock(self._lock_name, 10.0):
            self._store.set(self._cache_key, self._cipher.encrypt(cache.serialize().encode()))
            self._store.delete(self._flow_key)
            self._store.delete(self._ended_key)
        self._cache = cache
        self._app = None
        PROCESS_TOKENS.drop(self._memo_key)
        self._accept(result)
        claims = result.get("id_token_claims") or {}
        user = str(claims.get("preferred_username") or claims.get("upn") or claims.get("oid") or "")
        scopes = tuple(str(token_claims(str(result["access_token"])).get("scp", "")).split())
        log.info("delegated sign-in completed for %s", user)
        return SignInProgress("signed_in", user=user, scopes=scopes,
                              message=f"Signed in as {user}: lookups now run with this person's access "
                                      f"(delegated {', '.join(scopes) or 'no scope'}).")

    def sign_out(self) -> str | None:
        """Forget the signed-in person's tokens and any pending sign-in; the user who was signed in."""
        user = self.signed_in_user()
        with self._store.lock(self._lock_name, 10.0):
            self._forget_tokens()
            self._store.delete(self._flow_key)
            self._store.delete(self._ended_key)
        return user

    def _flow_error(self, result: dict[str, Any]) -> ConnectorError:
        """Device-flow answers that end the sign-in, in words a person can act on."""
        error = str(result.get("error", ""))
        codes = self._codes(result)
        code = codes[0] if codes else None
        label = f"AADSTS{code}" if code else error or "unknown_error"
        correlation = str(result["correlation_id"]) if result.get("correlation_id") else None
        fields: dict[str, Any] = {"code": label, "correlation_id": correlation}
        if code == 7000218 or (error == "invalid_client" and code != 700025):
            return ConfigurationError(
                "The app registration does not allow public client flows (AADSTS7000218), which the device code "
                "sign-in needs: in Entra ID open the app registration, Authentication, Advanced settings, and set "
                "'Allow public client flows' to Yes; then sign in again.", **fields)
        if code == 700025:
            return ConfigurationError("Entra ID says this public client must not send a secret (AADSTS700025): "
                                      "remove client_secret and private_key from a delegated configuration.",
                                      **fields)
        if error == "authorization_declined":
            return AuthenticationError(f"The sign-in was declined at the sign-in page: {_START} if that was a "
                                       "mistake.", **fields)
        if error in ("expired_token", "code_expired", "bad_verification_code"):
            return AuthenticationError(f"The code expired before the sign-in was finished: {_START}.", **fields)
        if code == 53003:
            return AuthenticationError(
                "Conditional Access blocked the sign-in (AADSTS53003): a Conditional Access policy does not allow "
                "this sign-in (device code flows are often blocked); ask your Entra ID administrator for an "
                "exception for this app or use application permissions.", **fields)
        if code in (65001, 650057):
            return PermissionDeniedError(
                f"The app registration has no consented delegated {REQUIRED_ROLE} permission ({label}): add the "
                f"WindowsDefenderATP delegated permission {REQUIRED_ROLE} and grant admin consent.", **fields)
        if code == 9001023:
            return ConfigurationError("Device code sign-in needs a tenant: set tenant_id to the tenant's GUID or "
                                      "domain, not common/consumers.", **fields)
        return self._sign_in_error(result)


_START = HOW_TO_START_SIGN_IN


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DelegatedMdeClient(ExplainsForbidden):
    """The API client for delegated tokens: a 403 names the person and Defender's "View data" role
    (their token has the scope; what they lack is the role), not the application permission."""

    def explain_forbidden(self, exc: PermissionDeniedError, deadline: float) -> PermissionDeniedError | None:
        user = self._user()
        return PermissionDeniedError(
            f"Defender refused {user} (403 {exc.code or 'Forbidden'}): the signed-in user needs Defender's "
            "'View data' role permission (Microsoft Defender portal, Permissions, Roles) and the app "
            f"registration the delegated {REQUIRED_ROLE} permission with admin consent.",
            http_status=403, code=exc.code, correlation_id=exc.correlation_id)

    def _user(self) -> str:
        tokens = self._tokens
        user = tokens.signed_in_user() if isinstance(tokens, DelegatedTokenProvider) else None
        return user or "the signed-in user"
