"""What an emulator run looks like: one frozen value object, validated once.

Every knob a test, the demo or a benchmark may turn lives here, so that an emulator can be
described (and reproduced) by its config alone. Everything else is derived from it at start.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Generation = Literal["current", "legacy", "both"]
GENERATIONS: tuple[Generation, ...] = ("current", "legacy", "both")
RetryAfterFormat = Literal["auto", "integer", "decimal"]

IP_READ_ALL = "Ip.Read.All"

# Token scopes Entra accepts for the Defender API (commercial, GCC, GCC High / DoD), and the
# audience each one puts in the access token (the scope without "/.default").
DEFENDER_SCOPE = "https://api.securitycenter.microsoft.com/.default"
DEFENDER_SCOPES: tuple[str, ...] = (
    DEFENDER_SCOPE,
    "https://securitycenter.onmicrosoft.com/windowsatpservice/.default",
    "https://securitycenter.onmicrosoft.us/windowsatpservice/.default",
)
DEFENDER_AUDIENCES: frozenset[str] = frozenset(s.removesuffix("/.default") for s in DEFENDER_SCOPES)
# A resource that exists but is not Defender: Entra issues the token, the API refuses its audience.
# This is the most common real-world misconfiguration, so the emulator reproduces it.
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
KNOWN_RESOURCES: frozenset[str] = DEFENDER_AUDIENCES | {GRAPH_SCOPE.removesuffix("/.default")}


@dataclass(frozen=True)
class AppSpec:
    """An application registration to create at start (its IDs derive from the seed)."""

    name: str
    roles: tuple[str, ...] = (IP_READ_ALL,)
    secret: bool = True
    certificate: bool = False
    tenant: str = "main"
    public_client: bool = False          # "Allow public client flows" (device code grant without a credential)
    delegated: tuple[str, ...] = ()      # delegated permissions on the Defender API, admin-consented


@dataclass(frozen=True)
class UserSpec:
    """A work account that can sign in with the device code (its object id derives from the seed)."""

    name: str
    view_data: bool = True               # holds Defender's "View data" role permission
    tenant: str = "main"
    display_name: str = ""


@dataclass(frozen=True)
class IdentitySpec:
    """A managed identity of the emulated host (a Function App, a VM): its IDs derive from the seed.

    ``user_assigned`` False is the host's system-assigned identity (at most one); ``assigned`` False is an
    identity that exists in the directory but is not attached to this host (the "no identity" case)."""

    name: str
    user_assigned: bool = False
    roles: tuple[str, ...] = (IP_READ_ALL,)
    tenant: str = "main"
    assigned: bool = True


DEFAULT_IDENTITIES: tuple[IdentitySpec, ...] = (
    IdentitySpec("system"),
    IdentitySpec("user", user_assigned=True),
    IdentitySpec("noperm-identity", user_assigned=True, roles=()),
)

DEFAULT_APPS: tuple[AppSpec, ...] = (
    AppSpec("reader", roles=(IP_READ_ALL,), secret=True, certificate=True),
    AppSpec("reader2", roles=(IP_READ_ALL,), secret=True),
    AppSpec("noperm", roles=(), secret=True),
    # A registration for delegated sign-in: public client flows on, delegated Ip.Read.All consented,
    # no application role. It also holds a secret (as many real registrations do) that a public
    # client must never send.
    AppSpec("delegated", roles=(), secret=True, public_client=True, delegated=(IP_READ_ALL,)),
)

DEFAULT_USERS: tuple[UserSpec, ...] = (
    UserSpec("analyst", view_data=True, display_name="Ada Analyst"),
    UserSpec("analyst2", view_data=True, display_name="Bea Analyst"),
    UserSpec("norole", view_data=False, display_name="Noel Norole"),
)

OIDC_SCOPES: frozenset[str] = frozenset({"openid", "profile", "offline_access", "email"})
DAY_S = 86_400.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class EmulatorConfig:
    """All settings of one emulator; see emulator/README.md for what each one changes."""

    seed: int = 7
    now: datetime | None = None
    generation: Generation = "current"
    token_lifetime_s: float = 3600.0
    token_refresh_in_s: float | None = None          # Entra's refresh_in on app tokens (real seconds): renew early
    time_scale: float = 1.0
    rate_limits: tuple[tuple[int, float], ...] = ((100, 60.0), (1500, 3600.0))
    port: int = 0
    host: str = "127.0.0.1"
    out_dir: Path | None = None
    tenants: tuple[str, ...] = ("main",)
    apps: tuple[AppSpec, ...] = DEFAULT_APPS
    retry_after: RetryAfterFormat = "auto"
    log_limit: int = 100_000
    idle_timeout_s: float = 60.0
    fresh_keys: bool = False
    users: tuple[UserSpec, ...] = DEFAULT_USERS
    device_code_lifetime_s: float = 900.0            # emulated seconds (Entra: 15 minutes)
    device_code_interval_s: int = 5                  # real seconds between polls, as MSAL sleeps them
    refresh_token_inactivity_s: float = 90 * DAY_S   # emulated seconds (Entra: 90 days of inactivity)
    device_auto_approve: str | None = None           # a user name: approve every device code as them...
    device_auto_approve_polls: int = 2               # ...when this poll arrives (earlier ones are pending)
    identities: tuple[IdentitySpec, ...] = DEFAULT_IDENTITIES
    identity_token_lifetime_s: float = 86_400.0      # emulated seconds: managed identity tokens live 24 h

    def __post_init__(self) -> None:
        if self.now is not None and self.now.tzinfo is None:
            object.__setattr__(self, "now", self.now.replace(tzinfo=UTC))
        if self.generation not in GENERATIONS:
            raise ValueError(f"generation must be one of {GENERATIONS}, not {self.generation!r}")
        if not self.time_scale > 0:
            raise ValueError("time_scale must be > 0")
        if not self.token_lifetime_s > 0:
            raise ValueError("token_lifetime_s must be > 0")
        if self.token_refresh_in_s is not None and not self.token_refresh_in_s > 0:
            raise ValueError("token_refresh_in_s must be > 0 (or None: no refresh_in)")
        for calls, window in self.rate_limits:
            if calls < 1 or window <= 0:
                raise ValueError(f"bad rate limit ({calls}, {window}): need calls >= 1 and window > 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if not _loopback(self.host):
            raise ValueError(f"the emulator binds loopback only (127.0.0.1, ::1, localhost), not {self.host!r}")
        if self.retry_after not in ("auto", "integer", "decimal"):
            raise ValueError("retry_after must be 'auto', 'integer' or 'decimal'")
        if not self.tenants or len(set(self.tenants)) != len(self.tenants):
            raise ValueError("tenants must be a non-empty tuple of distinct names")
        names = [a.name for a in self.apps]
        if len(set(names)) != len(names):
            raise ValueError("app names must be distinct")
        for app in self.apps:
            if app.tenant not in self.tenants:
                raise ValueError(f"app {app.name!r} names unknown tenant {app.tenant!r}")
            if not (app.secret or app.certificate or app.public_client):
                raise ValueError(f"app {app.name!r} needs a secret, a certificate or public client flows")
        user_names = [u.name for u in self.users]
        if len(set(user_names)) != len(user_names):
            raise ValueError("user names must be distinct")
        for user in self.users:
            if user.tenant not in self.tenants:
                raise ValueError(f"user {user.name!r} names unknown tenant {user.tenant!r}")
        if self.device_auto_approve is not None and self.device_auto_approve not in user_names:
            raise ValueError(f"device_auto_approve names unknown user {self.device_auto_approve!r}")
        if self.device_auto_approve_polls < 1:
            raise ValueError("device_auto_approve_polls must be >= 1")
        if not self.device_code_lifetime_s > 0 or not self.refresh_token_inactivity_s > 0:
            raise ValueError("device_code_lifetime_s and refresh_token_inactivity_s must be > 0")
        if not isinstance(self.device_code_interval_s, int) or self.device_code_interval_s < 1:
            raise ValueError("device_code_interval_s must be an integer >= 1 (MSAL busy-polls on 0)")
        identity_names = [i.name for i in self.identities]
        if len(set(identity_names)) != len(identity_names):
            raise ValueError("identity names must be distinct")
        if sum(1 for i in self.identities if not i.user_assigned) > 1:
            raise ValueError("a host has at most one system-assigned identity")
        for identity in self.identities:
            if identity.tenant not in self.tenants:
                raise ValueError(f"identity {identity.name!r} names unknown tenant {identity.tenant!r}")
        if not self.identity_token_lifetime_s > 0:
            raise ValueError("identity_token_lifetime_s must be > 0")
        if self.out_dir is not None and not isinstance(self.out_dir, Path):
            object.__setattr__(self, "out_dir", Path(self.out_dir))
