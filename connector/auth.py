"""Access tokens for the Defender API: MSAL client credentials, cached across processes.

SOAR platforms start a fresh process for most action runs. Without a shared cache every run would
sign in again, and a burst of workers would each ask Entra ID for a token at the same instant. So the
MSAL token cache lives in the connector's state store, encrypted with a key derived from the
configured credential (whoever can read the state but not the credential learns nothing), and a
store-wide lock makes concurrent processes wait for the one that is signing in. A sign-in service
that fails transiently (5xx, reset, timeout) is retried with backoff within the item's time budget.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet, InvalidToken

from connector.credentials import application_identity, credential_key, key_digest
from connector.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    NetworkError,
    UnavailableError,
)
from connector.redaction import redact, register_secret
from connector.retry import backoff_s, wait_or_raise
from connector.settings import Settings
from connector.state import StateStore
from connector.token_memo import PROCESS_TOKENS
from connector.transport import TLS_VERIFICATION_FAILED, ConnectorSession, connection_failure

if TYPE_CHECKING:
    import msal

log = logging.getLogger(__name__)


def msal_module() -> Any:
    """MSAL, imported when a sign-in really needs it. A lookup whose token is already in the shared
    cache never does: the cache is read as the JSON MSAL wrote (``_entries``), and MSAL's import (its
    applications, OpenID client, managed identity, an HTTP server for the auth-code flow) is a good
    part of a fresh process's start, paid by every SOAR action run."""
    import msal

    return msal

EXPIRY_MARGIN_S = 300.0
"""MSAL treats a token with under five minutes left as expired; the in-process memo does the same."""

_MICROSOFT_LOGIN_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn")

# AADSTS codes worth a precise hint: (category, what to fix)
_AADSTS_HINTS: dict[int, tuple[type[ConnectorError], str]] = {
    7000215: (AuthenticationError,
              "the client secret is wrong: copy the secret's Value (not its ID) into client_secret"),
    7000222: (AuthenticationError, "the client secret has expired: create a new one in the app registration"),
    700016: (ConfigurationError,
             "client_id is not an application registered in this tenant: check client_id and tenant_id"),
    90002: (ConfigurationError, "tenant_id was not found: check tenant_id and the cloud setting"),
    900023: (ConfigurationError, "tenant_id is not a valid tenant: check tenant_id"),
    70011: (ConfigurationError,
            "the scope is not valid for this cloud: check the cloud setting or the scope override"),
    700027: (AuthenticationError,
             "the certificate was not accepted: upload it to the app registration and check the thumbprint"),
    7000274: (AuthenticationError, "the client assertion was refused: check the certificate and thumbprint"),
    700024: (AuthenticationError, "the client assertion is outside its validity window: check this host's clock"),
    7000112: (AuthenticationError, "the application is disabled in the tenant"),
    700025: (AuthenticationError,
             "the application is public, not confidential: a client secret or certificate cannot be used"),
}


_TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
"""RFC 6749 error codes that say "not now" rather than "not you"."""


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without verifying it: only for diagnosing a 401 or 403."""
    try:
        payload = token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _msal_time(value: object) -> int | None:
    """A time of MSAL's cache (expires_on, refresh_on: epoch seconds, as text) read as MSAL reads it,
    with int(); None when MSAL could not read it."""
    try:
        return int(str(value))
    except ValueError:
        return None


def _readable_by_msal(text: str) -> str | None:
    """The cache text less the access tokens whose times MSAL cannot read (None: not a cache at all).

    MSAL int()s every access token's expires_on (and refresh_on) on each search of its cache and
    raises on anything else: one such entry would make every later sign-in fail. It counts as expired."""
    try:
        cache = json.loads(text)
    except ValueError:
        return None
    tokens = cache.get("AccessToken") if isinstance(cache, dict) else None
    if not isinstance(tokens, dict):
        return text
    unreadable = [key for key, entry in tokens.items()
                  if not isinstance(entry, dict) or _msal_time(entry.get("expires_on")) is None
                  or ("refresh_on" in entry and _msal_time(entry["refresh_on"]) is None)]
    if not unreadable:
        return text
    log.debug("dropping %d cached access token(s) whose expiry cannot be read", len(unreadable))
    for key in unreadable:
        del tokens[key]
    return json.dumps(cache)


def _renewal_due(token: dict[str, Any]) -> bool:
    """Entra ID asked (refresh_in, kept by MSAL as refresh_on) for this still valid token to be renewed by now."""
    return "refresh_on" in token and float(token["refresh_on"]) <= time.time()


def _cipher(key: bytes) -> Fernet:
    """The token cache's cipher for a 32-byte key (the credential's, or delegated access's installation key)."""
    return Fernet(base64.urlsafe_b64encode(key))


def _cache_cipher(settings: Settings) -> Fernet:
    """The application token cache's cipher (tests decrypt the stored blob with it)."""
    return _cipher(credential_key(settings))


def forget_process_tokens() -> None:
    """Start afresh as a new process would (tests that model separate SOAR action runs)."""
    PROCESS_TOKENS.clear()


def _credential(settings: Settings) -> str | dict[str, str]:
    if settings.client_secret is not None:
        return settings.client_secret.get_secret_value()
    assert settings.private_key is not None
    credential = {"private_key": settings.private_key.get_secret_value()}
    if settings.public_certificate:
        credential["public_certificate"] = settings.public_certificate
    else:
        assert settings.thumbprint is not None
        credential["thumbprint"] = settings.thumbprint
    return credential


class TokenProvider:
    """Hands out a valid access token, from memory, the shared cache, or Entra ID, in that order.

    This one signs the application in (client credentials); connector.delegated's subclass signs a
    person in. They differ in the MSAL application, the scope, the cache's key material and the
    names under which the cache and its lock live in the store, so the two never read each other's
    tokens."""

    CACHE_PREFIX = "msal-cache"
    LOCK_PREFIX = "token"

    def __init__(self, settings: Settings, session: requests.Session, store: StateStore) -> None:
        self._settings = settings
        self._session = session
        self._store = store
        key = self._cache_secret()
        self._cipher = _cipher(key)
        endpoints = settings.endpoints
        self._authority = f"{endpoints.login_url}/{settings.tenant_id}"
        self._scopes = self._requested_scopes()
        scope_digest = hashlib.sha256(f"{self._authority}|{' '.join(self._scopes)}".encode()).hexdigest()[:16]
        self._cache_key = f"{self.CACHE_PREFIX}:{settings.tenant_id}:{settings.client_id}:{scope_digest}"
        self._lock_name = f"{self.LOCK_PREFIX}:{settings.tenant_id}:{settings.client_id}"
        self._cache_text: str | None = None  # the decrypted cache, as MSAL serialized it
        self._cache_blob: bytes | None = None  # the stored blob _cache_text was read from (or written as)
        self._parsed: tuple[str, dict[str, Any]] | None = None  # _cache_text's JSON, parsed once
        self._msal_cache: msal.SerializableTokenCache | None = None  # built only when MSAL must act
        self._app: msal.ClientApplication | None = None
        self._memo_key = f"{self._cache_key}:{key_digest(key)}"
        self.last_source: str | None = None
        self.last_holder: str | None = None
        self._app_identity: str | None = None  # identity(), derived once
        """Whose token get() handed out last (identity()'s form): what the result cache may file its answer under."""
        for secret in (settings.client_secret, settings.private_key):
            if secret is not None:
                register_secret(secret.get_secret_value())

    def _cache_secret(self) -> bytes:
        """The 32-byte key the stored token cache is encrypted with."""
        return credential_key(self._settings)

    def _requested_scopes(self) -> list[str]:
        return [self._settings.endpoints.scope]

    # -- public -----------------------------------------------------------------------------------

    def identity(self) -> str:
        """Whose answers these are, for the result cache: the application with this credential."""
        if self._app_identity is None:
            self._app_identity = application_identity(self._settings)
        return self._app_identity

    def _current_holder(self) -> str | None:
        """Whose token this provider would hand out now (identity()'s form): the application's is fixed;
        delegated access reads the store, where another process may have signed someone in or out."""
        return self.identity()

    def _loaded_holder(self) -> str | None:
        """Whose tokens the cache this provider loaded last holds (where the token just accepted came from)."""
        return self.identity()

    def get(self, deadline: float) -> str:
        """A token valid for at least five more minutes, or a ConnectorError saying what to fix."""
        holder = self._current_holder()
        held = PROCESS_TOKENS.get(self._memo_key, holder)
        if held is not None:
            self.last_source, self.last_holder = "memory", holder
            return held
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._accept(self._sign_in(deadline))
            except (UnavailableError, NetworkError) as exc:
                if exc.code == TLS_VERIFICATION_FAILED:
                    raise
                failure = exc
            # Transient: retry outside the lock. MSAL replays a 5xx for its Retry-After (5 s without
            # one) from its own throttling cache, so Entra ID is not asked again sooner than that.
            wait_or_raise(backoff_s(attempt), deadline, failure, f"sign-in {failure.category.value}")

    def invalidate(self, token: str) -> None:
        """Forget a token the API refused, in memory and in the shared cache, so the next get() signs in."""
        PROCESS_TOKENS.drop(self._memo_key, token)
        with self._store.lock(self._lock_name, 10.0):
            self._load_cache()
            for item in list(self._cache.search(msal_module().TokenCache.CredentialType.ACCESS_TOKEN)):
                if item.get("secret") == token:
                    self._cache.remove_at(item)
            if self._cache.has_state_changed:
                self._save_cache()

    # -- MSAL -------------------------------------------------------------------------------------

    def _sign_in(self, deadline: float) -> dict[str, Any]:
        """One try: the shared cache, else Entra ID, under the store-wide lock and within the deadline."""
        self._load_cache()
        cached = self._cached_token()
        if cached is not None and not _renewal_due(cached):  # another process signed in: no lock, no MSAL
            return cached
        wait = max(0.0, min(deadline - time.monotonic(), 30.0))
        with self._store.lock(self._lock_name, wait) as locked, self._within(deadline):
            if not locked:
                log.debug("token lock not acquired in %.1fs; signing in without it", wait)
            self._load_cache()
            cached = self._cached_token()
            result = cached if cached is not None and not _renewal_due(cached) else self._renewed(cached)
            if self._cache.has_state_changed:
                self._save_cache()
        return result

    def _renewed(self, cached: dict[str, Any] | None) -> dict[str, Any]:
        """A token from MSAL, which signs in (or, for a token due for renewal, renews it). A renewal the
        sign-in service fails transiently falls back on the cached token, still valid, as MSAL itself does
        for an error answer."""
        if cached is None:
            return self._acquire()
        try:
            return self._acquire()
        except (UnavailableError, NetworkError) as exc:
            log.debug("renewing a token due for renewal failed (%s); using it until it expires", exc.category.value)
            return cached

    def _cached_token(self) -> dict[str, Any] | None:
        """A token for this app, tenant and scope from the shared cache with over five minutes left,
        answered as MSAL would, without building an MSAL application (which fetches OpenID discovery)."""
        now = time.time()
        wanted = set(self._scopes)
        for item in self._entries("AccessToken"):
            if item.get("client_id") != self._settings.client_id:
                continue
            if not wanted <= set(str(item.get("target", "")).split()):  # MSAL's own matching rule
                continue
            expires_on = _msal_time(item.get("expires_on"))
            if expires_on is None or expires_on - now <= EXPIRY_MARGIN_S or not item.get("secret"):
                continue
            token = {"access_token": item["secret"], "expires_in": expires_on - now, "token_source": "cache"}
            refresh_on = _msal_time(item.get("refresh_on"))
            if refresh_on is not None:
                token["refresh_on"] = refresh_on
            return token
        return None

    def _within(self, deadline: float) -> AbstractContextManager[None]:
        if isinstance(self._session, ConnectorSession):
            return self._session.deadline(deadline)
        return nullcontext()

    def _instance_discovery(self) -> bool:
        """MSAL's instance discovery only for Microsoft's own sign-in hosts (elsewhere, e.g. the
        emulator, it would call login.microsoftonline.com)."""
        return (urlsplit(self._settings.endpoints.login_url).hostname or "") in _MICROSOFT_LOGIN_HOSTS

    def _build_application(self, cache: msal.SerializableTokenCache) -> msal.ClientApplication:
        return msal_module().ConfidentialClientApplication(
            self._settings.client_id,
            client_credential=_credential(self._settings),
            authority=self._authority,
            token_cache=cache,
            http_client=self._session,
            instance_discovery=self._instance_discovery(),
        )

    def _application(self) -> msal.ClientApplication:
        if self._app is None:
            self._app = self._new_application(self._cache)
        return self._app

    def _new_application(self, cache: msal.SerializableTokenCache) -> msal.ClientApplication:
        """An MSAL application on the connector's session; OpenID discovery failures in the
        connector's vocabulary."""
        try:
            return self._build_application(cache)
        except ConnectorError:
            raise
        except requests.RequestException as exc:
            raise connection_failure(exc, "the sign-in service", self._settings.endpoints.login_url) from None
        except msal_module().exceptions.MsalServiceError as exc:  # a 5xx from OpenID discovery
            raise UnavailableError(
                f"The sign-in service at {self._settings.endpoints.login_url} failed during discovery "
                f"({redact(str(exc))[:100]}); retry later.") from None
        except ValueError as exc:
            raise self._discovery_error(exc) from None

    def _discovery_error(self, exc: ValueError) -> ConnectorError:
        text = str(exc)
        if "private key" in text.lower() or "certificate" in text.lower():
            return ConfigurationError("The certificate credential could not be used: check private_key, "
                                      "thumbprint and public_certificate.")
        return ConfigurationError(
            f"Entra ID has no tenant '{self._settings.tenant_id}' at {self._settings.endpoints.login_url} "
            "(the OpenID configuration could not be read): check tenant_id and the cloud setting.",
            code="AADSTS90002" if "90002" in text else None,
        )

    def _acquire(self) -> dict[str, Any]:
        app = self._application()
        assert isinstance(app, msal_module().ConfidentialClientApplication)
        with self._token_request_errors():
            result: dict[str, Any] = app.acquire_token_for_client(scopes=self._scopes)
        return result

    @contextmanager
    def _token_request_errors(self) -> Iterator[None]:
        """A token request's transport and service failures (MSAL raises some, returns others) in the
        connector's vocabulary; an answer with an error dict is judged by _sign_in_error."""
        try:
            yield
        except ConnectorError:
            raise
        except requests.RequestException as exc:
            raise connection_failure(exc, "the sign-in service", self._settings.endpoints.login_url) from None
        except (msal_module().exceptions.MsalServiceError, ValueError, KeyError) as exc:
            raise UnavailableError(
                f"The sign-in service failed ({type(exc).__name__}: {redact(str(exc))[:200]}); retry later."
            ) from None

    def _accept(self, result: dict[str, Any]) -> str:
        if "access_token" in result:
            token = str(result["access_token"])
            register_secret(token)
            lifetime = float(result.get("expires_in", 0) or 0)
            good_for = lifetime - EXPIRY_MARGIN_S
            if "refresh_on" in result:  # renewed when Entra ID asked, not only near expiry
                good_for = min(good_for, float(result["refresh_on"]) - time.time())
            holder = self._loaded_holder()
            if holder is not None:
                PROCESS_TOKENS.put(self._memo_key, holder, token, good_for)
            self.last_source = str(result.get("token_source", "identity_provider"))
            self.last_holder = holder
            log.debug("access token obtained from %s, valid %.0fs", self.last_source, lifetime)
            return token
        raise self._sign_in_error(result)

    def _sign_in_error(self, result: dict[str, Any]) -> ConnectorError:
        error = str(result.get("error", "unknown_error"))
        description = redact(str(result.get("error_description", ""))).split("\r\n")[0].split("\n")[0]
        codes = result.get("error_codes") or []
        code = int(codes[0]) if codes and str(codes[0]).isdigit() else None
        if code is None and description.startswith("AADSTS"):
            digits = description[6:].split(":")[0]
            code = int(digits) if digits.isdigit() else None
        kind, hint = _AADSTS_HINTS.get(code or -1, (AuthenticationError, ""))
        if error in _TRANSIENT_OAUTH_ERRORS:  # Entra ID's own hiccup (a 429, say): retried within the budget
            kind, hint = UnavailableError, "the sign-in service is busy or failing; retry later"
        if not hint:
            hint = "check tenant_id, client_id and the credential"
        label = f"AADSTS{code}" if code else error
        return kind(
            f"Sign-in to Entra ID failed ({label}): {hint}. Entra ID said: {description[:300]}",
            code=label,
            correlation_id=str(result["correlation_id"]) if result.get("correlation_id") else None,
        )

    # -- shared cache -----------------------------------------------------------------------------

    @property
    def _cache(self) -> msal.SerializableTokenCache:
        """MSAL's cache object, built (and MSAL imported) only when MSAL has to act on it."""
        if self._msal_cache is None:
            self._msal_cache = msal_module().SerializableTokenCache()
            if self._cache_text:
                self._msal_cache.deserialize(self._cache_text)
        return self._msal_cache

    @_cache.setter
    def _cache(self, cache: msal.SerializableTokenCache) -> None:
        self._msal_cache = cache
        self._cache_text = cache.serialize()
        self._cache_blob = None

    def _entries(self, kind: str) -> list[dict[str, Any]]:
        """The cache's entries of one kind ("AccessToken", "Account"), read as the JSON MSAL wrote."""
        text = self._cache_text or "{}"
        if self._parsed is None or self._parsed[0] is not text:
            try:
                cache = json.loads(text)
            except ValueError:
                cache = {}
            self._parsed = (text, cache if isinstance(cache, dict) else {})
        section = self._parsed[1].get(kind) or {}
        return [entry for entry in section.values() if isinstance(entry, dict)] if isinstance(section, dict) else []

    def _load_cache(self) -> None:
        """The stored cache replaces what this provider held (another process may have signed in, out,
        or refreshed); none stored, or none readable with this key, is an empty cache. The blob this
        provider last read or wrote needs no decrypting again (delegated access reads it on every get())."""
        blob = self._store.get(self._cache_key)
        unsaved = self._msal_cache is not None and self._msal_cache.has_state_changed
        if blob is not None and blob == self._cache_blob and not unsaved:
            return
        self._cache_blob = blob
        text = None
        if blob is not None:
            try:
                text = _readable_by_msal(self._cipher.decrypt(blob).decode())
            except (InvalidToken, ValueError):
                log.debug("stored token cache unreadable with the current credential; starting afresh")
        if text is None:
            if self._cache_text is not None:  # gone since: signed out, or replaced under another key
                self._cache_text, self._msal_cache, self._app = None, None, None
            return  # never had one: the MSAL application stays, and with it MSAL's memory of throttling
        if self._msal_cache is not None:
            self._msal_cache.deserialize(text)
        self._cache_text = text

    def _save_cache(self) -> None:
        self._cache_text = self._cache.serialize()
        self._cache_blob = self._cipher.encrypt(self._cache_text.encode())
        self._store.set(self._cache_key, self._cache_blob)
        self._cache.has_state_changed = False
