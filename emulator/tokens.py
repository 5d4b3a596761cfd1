"""Access tokens: issued by the emulated Entra ID, checked by the emulated Defender API.

Tokens are RS256 JWTs in Entra's v1 application-token shape (`aud`, `iss`, `tid`, `appid`, `roles`,
`iat`, `nbf`, `exp`, `ver`...), signed with a key generated at start and published in the JWKS.
Times are on the clock's token time (real Unix time plus explicit advances), so `exp` is meaningful
to a client and `EmulatedClock.advance()` can expire a token that the client still thinks valid.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

from emulator.clock import EmulatedClock
from emulator.directory import AppRegistration, Tenant
from emulator.pki import b64url, key_id, shared_rsa_key


class TokenRejected(Exception):
    """Why an access token is not acceptable (logged by the emulator, never sent to the client)."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class TokenService:
    def __init__(self, clock: EmulatedClock, lifetime_s: float, fresh_key: bool = False) -> None:
        self._clock = clock
        self.lifetime_s = lifetime_s
        self._key = shared_rsa_key("token-signing", fresh_key)
        self._instance = secrets.token_bytes(4)  # binds tokens to this emulator even if the key is shared
        self.kid = key_id(self._key.public_key())
        self._public = self._key.public_key()
        self._generation = 0  # bumped by revoke_all()
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def jwks(self, issuer: str) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": self.kid, "x5t": self.kid, "use": "sig", "issuer": issuer})
        return {"keys": [jwk]}

    @staticmethod
    def issuer(tenant_id: str) -> str:
        return f"https://sts.windows.net/{tenant_id}/"

    def issue(self, tenant: Tenant, app: AppRegistration, audience: str, roles: tuple[str, ...],
              via_certificate: bool, lifetime_s: float | None = None,
              extra_claims: dict[str, Any] | None = None) -> IssuedToken:
        """Sign a token; its lifetime is in emulated seconds, `expires_in` in real seconds."""
        emulated = self.lifetime_s if lifetime_s is None else lifetime_s
        expires_in = max(1, math.ceil(self._clock.to_real(emulated) - 1e-9))
        iat = int(self._clock.epoch())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(tenant.tenant_id),
            "iat": iat,
            "nbf": iat,
            "exp": iat + expires_in,
            "aio": b64url(secrets.token_bytes(24)),
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if via_certificate else "1",
            "idp": self.issuer(tenant.tenant_id),
            "idtyp": "app",
            "oid": app.object_id,
            "rh": "0." + b64url(secrets.token_bytes(32)) + ".",
            "sub": app.object_id,
            "tid": tenant.tenant_id,
            "uti": b64url(self._instance + self._generation.to_bytes(4, "big") + secrets.token_bytes(8)),
            "ver": "1.0",
        }
        if roles:  # Entra omits the claim entirely when the app holds no role on the resource
            claims["roles"] = list(roles)
        claims.update(extra_claims or {})
        token = jwt.encode(claims, self._key, algorithm="RS256",
                           headers={"typ": "JWT", "x5t": self.kid, "kid": self.kid})
        return IssuedToken(token, expires_in)

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign other JWTs (id tokens) with the same published key."""
        return jwt.encode(claims, self._key, algorithm="RS256",
                          headers={"typ": "JWT", "kid": self.kid})

    @property
    def clock(self) -> EmulatedClock:
        return self._clock

    def revoke_all(self) -> None:
        """Every token issued so far becomes invalid (as after a key roll or a revocation)."""
        self._generation += 1
        with self._cache_lock:
            self._cache.clear()

    def verify(self, token: str, audiences: frozenset[str]) -> dict[str, Any]:
        """Signature, audience, lifetime; returns the claims or raises TokenRejected."""
        claims = self._signed_claims(token)
        if claims.get("aud") not in audiences:
            raise TokenRejected(f"wrong audience {claims.get('aud')!r}")
        now = self._clock.epoch()
        if not isinstance(claims.get("exp"), int | float) or now >= claims["exp"]:
            raise TokenRejected("token expired")
        if isinstance(claims.get("nbf"), int | float) and now + 300 < claims["nbf"]:
            raise TokenRejected("token not yet valid")
        instance, generation = self._issued_by(claims)
        if instance != self._instance:
            raise TokenRejected("token issued by another emulator instance")
        if generation != self._generation:
            raise TokenRejected("token revoked")
        return claims

    @staticmethod
    def _issued_by(claims: dict[str, Any]) -> tuple[bytes, int]:
        """(emulator instance, revocation generation), both carried inside the opaque `uti`."""
        try:
            raw = base64.urlsafe_b64decode(str(claims.get("uti", "")) + "==")
        except (ValueError, binascii.Error):
            return b"", -1
        return raw[:4], int.from_bytes(raw[4:8], "big")

    def signed_claims_or_none(self, token: str) -> dict[str, Any] | None:
        try:
            return self._signed_claims(token)
        except TokenRejected:
            return None

    def _signed_claims(self, token: str) -> dict[str, Any]:
        with self._cache_lock:
            cached = self._cache.get(token)
        if cached is not None:
            return cached
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._public, algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_iss": False})
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"bad token ({type(exc).__name__})") from None
        with self._cache_lock:
            self._cache[token] = claims
            if len(self._cache) > 4096:
                self._cache.popitem(last=False)
        return claims
