"""`Emulator`: the whole stand-in (Entra ID + Defender API over HTTPS) as one context manager.

    with Emulator(EmulatorConfig(now=PINNED)) as emu:
        settings = emu.connector_config()       # what a connector needs to reach it
        emu.inject_fault(Fault(status=503))     # script the next API call's failure
        emu.counters(), emu.request_log()       # observe what crossed the wire

Starting generates a fresh private CA and server certificate, binds loopback, and serves in
background threads until `stop()`. RSA keys (token signing, client certificates) are generated at run
time once per process and shared by later emulators unless `fresh_keys=True` (see pki.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from emulator.clock import EmulatedClock
from emulator.config import DEFENDER_AUDIENCES, DEFENDER_SCOPE, GENERATIONS, EmulatorConfig, Generation
from emulator.control import Control
from emulator.defender import DefenderApi
from emulator.delegation import Delegation
from emulator.directory import AppRegistration, Directory, ManagedIdentity, Tenant, User
from emulator.dispatch import CONTROL_PREFIX, Dispatcher
from emulator.entra import Entra
from emulator.faults import Fault, FaultQueue
from emulator.identity import APP_SERVICE_PATH, IdentityEndpoint, describe_identities, identity_environment
from emulator.observe import Observations
from emulator.orgdata import Organisation, org_data
from emulator.pki import make_tls_material, write_private, write_public
from emulator.ratelimit import SlidingWindowLimiter
from emulator.server import TlsHttpServer, server_context
from emulator.unresponsive import UnresponsiveEndpoint

AuthKind = Literal["secret", "certificate", "certificate_chain"]


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        base = config or EmulatorConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self._generation: Generation = self.config.generation
        self._server: TlsHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self._unresponsive: UnresponsiveEndpoint | None = None
        self._stopping = threading.Event()
        self._faults = FaultQueue()
        self._observations = Observations(self.config.log_limit)
        self._base_url = ""
        self._identity_server: TlsHttpServer | None = None
        self._identity_thread: threading.Thread | None = None
        self._identity_url = ""
        self.startup_s = 0.0

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        began = time.perf_counter()
        self._stopping.clear()
        cfg = self.config
        self.clock = EmulatedClock(cfg.now, cfg.time_scale)
        self.directory = Directory(cfg.seed, cfg.tenants, cfg.apps, cfg.fresh_keys, cfg.users, cfg.identities)
        from emulator.tokens import TokenService

        self._tokens = TokenService(self.clock, cfg.token_lifetime_s, cfg.fresh_keys)
        self._delegation = Delegation(self.directory, self._tokens, cfg, lambda: self._base_url)
        self.org = Organisation(org_data(cfg.seed), self.clock.now(), self.clock.now)
        self._limiter = SlidingWindowLimiter(cfg.rate_limits, self.clock.elapsed)
        tls = make_tls_material()

        self._workdir = Path(tempfile.mkdtemp(prefix="mde-emulator-"))
        self._workdir.chmod(0o700)
        cert_file = write_public(self._workdir / "server.pem", tls.server_cert_pem)
        key_file = write_private(self._workdir / "server.key", tls.server_key_pem)
        ca_dir = cfg.out_dir or self._workdir
        ca_dir.mkdir(parents=True, exist_ok=True)
        self._ca_path = write_public(ca_dir / "ca.pem", tls.ca_cert_pem).resolve()

        entra = Entra(self.directory, self._tokens, lambda: self._base_url, self._delegation,
                      self.config.token_refresh_in_s)
        api = DefenderApi(self.org, self._tokens, self.directory, self._limiter, self.clock,
                          lambda: self._base_url, lambda: self._generation, cfg.retry_after)
        self._identity = IdentityEndpoint(self.directory, self._tokens, self.clock, cfg)
        dispatcher = Dispatcher(entra, api, self._tokens, self._faults, self._observations,
                                Control(self), self._stopping)
        identity_dispatcher = Dispatcher(entra, api, self._tokens, self._faults, self._observations,
                                         Control(self), self._stopping, self._identity, identity_listener=True)
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        bind_host = "127.0.0.1" if cfg.host == "localhost" else cfg.host
        self._server = TlsHttpServer((bind_host, cfg.port), family, dispatcher,
                                     server_context(str(cert_file), str(key_file)), cfg.idle_timeout_s)
        port = self._server.server_address[1]
        url_host = f"[{cfg.host}]" if family == socket.AF_INET6 else cfg.host
        self._base_url = f"https://{url_host}:{port}"
        # The platform's identity endpoint is plain HTTP on the host itself (App Service: localhost; IMDS:
        # 169.254.169.254): its own loopback listener, serving nothing else.
        self._identity_server = TlsHttpServer((bind_host, 0), family, identity_dispatcher, None, cfg.idle_timeout_s)
        self._identity_url = f"http://{url_host}:{self._identity_server.server_address[1]}"
        self._identity_thread = _serve(self._identity_server, f"mde-emulator-identity:{port}")
        self._unresponsive = UnresponsiveEndpoint(bind_host, family)
        self._unresponsive_url = f"https://{url_host}:{self._unresponsive.port}"
        self._thread = _serve(self._server, f"mde-emulator:{port}")
        threading.Thread(target=self.org.data.warm, name="mde-emulator-warm", daemon=True).start()
        self.startup_s = time.perf_counter() - began
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, join threads, delete temporary files. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        _halt(server, self._thread)
        identity_server, self._identity_server = self._identity_server, None
        if identity_server is not None:
            _halt(identity_server, self._identity_thread)
        if self._unresponsive is not None:
            self._unresponsive.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._server is not None

    # ---- where it is ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def login_url(self) -> str:
        return self._base_url

    @property
    def api_url(self) -> str:
        return self._base_url

    @property
    def control_url(self) -> str:
        return self._base_url + CONTROL_PREFIX

    @property
    def ca_path(self) -> str:
        return str(self._ca_path)

    @property
    def unresponsive_url(self) -> str:
        """An https URL on loopback whose TCP connect never completes (see unresponsive.py)."""
        return self._unresponsive_url

    @property
    def scope(self) -> str:
        return DEFENDER_SCOPE

    @property
    def tenants(self) -> dict[str, Tenant]:
        return dict(self.directory.tenants)

    @property
    def tenant_id(self) -> str:
        return self.directory.tenants[self.config.tenants[0]].tenant_id

    @property
    def tenant_domain(self) -> str:
        return self.directory.tenants[self.config.tenants[0]].domain

    @property
    def authority(self) -> str:
        return f"{self.login_url}/{self.tenant_id}"

    @property
    def apps(self) -> dict[str, AppRegistration]:
        return dict(self.directory.apps)

    @property
    def users(self) -> dict[str, User]:
        return dict(self.directory.users)

    # ---- managed identities: the host's identity endpoint ---------------------------------------

    @property
    def identity_url(self) -> str:
        """The plain-HTTP loopback listener serving the App Service and IMDS identity endpoints."""
        return self._identity_url

    @property
    def identity_endpoint(self) -> str:
        """What App Service puts in IDENTITY_ENDPOINT."""
        return self._identity_url + APP_SERVICE_PATH

    @property
    def identity_header(self) -> str:
        """What App Service puts in IDENTITY_HEADER (a secret: never log it)."""
        return self._identity.header

    @property
    def identities(self) -> dict[str, ManagedIdentity]:
        return dict(self.directory.identities)

    def identity_environment(self, kind: str = "app_service") -> dict[str, str]:
        """The environment a host with an identity has: ``app_service`` (IDENTITY_ENDPOINT, IDENTITY_HEADER)
        or ``imds`` (AZURE_POD_IDENTITY_AUTHORITY_HOST, MSAL's override of the IMDS address)."""
        return identity_environment(kind, lambda: self._identity_url, lambda: self._identity.header)

    def managed_identity_config(self, identity: str = "system") -> dict[str, str]:
        """A connector configuration for auth_mode managed_identity (user-assigned identities by client id)."""
        found = self._identity.identity(identity)
        config = {"tenant_id": found.principal.tenant_id, "auth_mode": "managed_identity",
                  "api_url": self.api_url, "scope": self.scope, "ca_bundle": self.ca_path}
        if found.user_assigned:
            config["managed_identity_client_id"] = found.client_id
        return config

    def set_identity_assigned(self, identity: str, assigned: bool) -> None:
        """Attach an identity to the host or take it off (the "no identity" fault)."""
        self._identity.set_assigned(identity, assigned)

    def grant_identity_role(self, identity: str, role: str = "Ip.Read.All") -> None:
        """An app role assignment made now: tokens the platform already cached keep lacking it until they
        expire (identity_token_lifetime_s), as a grant "not yet in effect" does."""
        self._identity.grant(identity, role)

    def forget_identity_tokens(self) -> None:
        """Empty the platform's token cache (as its tokens expiring would)."""
        self._identity.forget_cached_tokens()

    def rotate_identity_header(self) -> str:
        """The platform rotates IDENTITY_HEADER; returns the new one."""
        return self._identity.rotate_header()

    def delegated_config(self, app: str = "delegated") -> dict[str, str]:
        """A connector configuration for delegated sign-in (device code): tenant and client id only,
        no secret, `auth_mode` "delegated"."""
        registration = self.directory.apps[app]
        return {"tenant_id": registration.tenant_id, "client_id": registration.client_id,
                "auth_mode": "delegated", "api_url": self.api_url, "login_url": self.login_url,
                "scope": self.scope, "ca_bundle": self.ca_path}

    def connector_config(self, app: str = "reader", auth: AuthKind = "secret") -> dict[str, str]:
        """A complete connector configuration (manifest field names) pointing at this emulator."""
        registration = self.directory.apps[app]
        config = {"tenant_id": registration.tenant_id, "client_id": registration.client_id}
        if auth == "secret":
            if not registration.client_secret:
                raise ValueError(f"app {app!r} has no client secret")
            config["client_secret"] = registration.client_secret
        elif auth in ("certificate", "certificate_chain"):
            if not registration.private_key_pem or not registration.certificate_pem:
                raise ValueError(f"app {app!r} has no certificate")
            config["private_key"] = registration.private_key_pem
            if auth == "certificate":
                config["thumbprint"] = registration.thumbprint_sha1_hex or ""
            else:
                config["public_certificate"] = registration.certificate_pem
        else:
            raise ValueError("auth must be 'secret', 'certificate' or 'certificate_chain'")
        config.update(api_url=self.api_url, login_url=self.login_url, scope=self.scope, ca_bundle=self.ca_path)
        return config

    def write_connector_files(self, directory: Path | str) -> dict[str, Path]:
        """Write ca.pem, connector.json (secret auth, "reader"), connector-certificate.json and the
        reader's key (0600) and certificate, connector-delegated.json (device-code sign-in, no
        secret), connector-managed-identity.json (the host's system-assigned identity, no secret) with
        identity.env (0600: IDENTITY_ENDPOINT and IDENTITY_HEADER to export), plus emulator.json (no
        secrets). Returns the paths."""
        out = Path(directory).resolve()
        out.mkdir(parents=True, exist_ok=True)
        ca = out / "ca.pem"
        if ca.resolve() != Path(self.ca_path):
            write_public(ca, Path(self.ca_path).read_text(encoding="ascii"))
        paths = {"ca": ca}
        secret_cfg = dict(self.connector_config("reader", "secret"), ca_bundle=str(ca))
        paths["connector"] = write_private(out / "connector.json", json.dumps(secret_cfg, indent=2) + "\n")
        reader = self.directory.apps["reader"]
        if reader.private_key_pem and reader.certificate_pem:
            cert_cfg = dict(self.connector_config("reader", "certificate"), ca_bundle=str(ca))
            paths["connector_certificate"] = write_private(out / "connector-certificate.json",
                                                           json.dumps(cert_cfg, indent=2) + "\n")
            paths["reader_key"] = write_private(out / "reader.key.pem", reader.private_key_pem)
            paths["reader_cert"] = write_public(out / "reader.cert.pem", reader.certificate_pem)
        if "delegated" in self.directory.apps:
            delegated_cfg = dict(self.delegated_config("delegated"), ca_bundle=str(ca))
            paths["connector_delegated"] = write_public(out / "connector-delegated.json",
                                                        json.dumps(delegated_cfg, indent=2) + "\n")
        if "system" in self.directory.identities:
            mi_cfg = dict(self.managed_identity_config("system"), ca_bundle=str(ca))
            paths["connector_managed_identity"] = write_public(out / "connector-managed-identity.json",
                                                               json.dumps(mi_cfg, indent=2) + "\n")
        paths["identity_env"] = write_private(  # IDENTITY_HEADER is a secret: 0600
            out / "identity.env", "".join(f"{k}={v}\n" for k, v in self.identity_environment().items()))
        paths["info"] = write_public(out / "emulator.json", json.dumps(self.info(), indent=2) + "\n")
        return paths

    def info(self) -> dict[str, Any]:
        """A description without secrets (also served at GET /_emulator/info)."""
        return {
            "base_url": self.base_url, "login_url": self.login_url, "api_url": self.api_url,
            "control_url": self.control_url, "ca_path": self.ca_path, "scope": self.scope,
            "tenant_id": self.tenant_id, "tenant_domain": self.tenant_domain,
            "tenants": {n: t.tenant_id for n, t in self.directory.tenants.items()},
            "apps": {n: {"client_id": a.client_id, "tenant_id": a.tenant_id, "roles": list(a.roles),
                         "secret": a.client_secret is not None,
                         "thumbprint_sha1_hex": a.thumbprint_sha1_hex,
                         "public_client": self._delegation.public_client(a), "delegated": list(a.delegated)}
                     for n, a in self.directory.apps.items()},
            "users": {n: {"upn": u.upn, "object_id": u.object_id, "tenant_id": u.tenant_id,
                          "view_data": u.view_data} for n, u in self.directory.users.items()},
            "device_code_interval_s": self.config.device_code_interval_s,
            "device_code_lifetime_s": self.config.device_code_lifetime_s,
            "refresh_token_inactivity_s": self.config.refresh_token_inactivity_s,
            "generation": self._generation, "time_scale": self.config.time_scale,
            "token_lifetime_s": self.config.token_lifetime_s,
            "rate_limits": [list(x) for x in self.config.rate_limits],
            "seed": self.config.seed, "now": self.now().isoformat(), "clock_pinned": self.clock.pinned,
            "unresponsive_url": self.unresponsive_url,
            "identity_url": self.identity_url,
            "identities": describe_identities(self.directory, self._identity),
        }

    # ---- control -------------------------------------------------------------------------

    def inject_fault(self, fault: Fault, count: int | None = 1) -> None:
        """Apply `fault` to the next `count` requests on its route (None: until cleared)."""
        self._faults.add(fault, count)

    def clear_faults(self) -> None:
        self._faults.clear()

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    def counters(self) -> dict[str, Any]:
        return self._observations.counters()

    def request_log(self) -> list[dict[str, Any]]:
        return self._observations.log()

    def reset_observations(self) -> None:
        self._observations.reset()

    def reset_rate_limits(self) -> None:
        self._limiter.reset()

    @property
    def generation(self) -> Generation:
        return self._generation

    def set_generation(self, generation: Generation) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"generation must be one of {GENERATIONS}")
        self._generation = generation

    def now(self) -> datetime:
        """The emulated calendar time the statistics are computed at."""
        return self.clock.now()

    def advance_clock(self, seconds: float) -> None:
        """Move emulated time forward: tokens age, rate-limit windows slide, the calendar moves."""
        self.clock.advance(seconds)

    def revoke_tokens(self) -> None:
        self._tokens.revoke_all()

    def issue_token(self, app: str = "reader", lifetime_s: float | None = None,
                    audience: str = "https://api.securitycenter.microsoft.com",
                    roles: tuple[str, ...] | None = None) -> str:
        """Mint an access token directly (tests of the API side without a token request)."""
        registration = self.directory.apps[app]
        tenant = self.directory.tenant_by_id(registration.tenant_id)
        assert tenant is not None
        granted = registration.roles if audience in DEFENDER_AUDIENCES else ()
        return self._tokens.issue(tenant, registration, audience, granted if roles is None else roles,
                                  via_certificate=False, lifetime_s=lifetime_s).access_token

    # ---- delegated sign-in: the person at the browser, and the tenant's policies ------------

    def pending_device_codes(self) -> list[dict[str, Any]]:
        """Device codes waiting for a person: user_code, client_id, scope, polls, state, expires_in_s."""
        return self._delegation.pending()

    def wait_for_device_code(self, timeout_s: float = 10.0) -> str:
        """The user code of the oldest pending device code, once one exists (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [p for p in self._delegation.pending() if p["state"] == "pending"]
            if pending:
                return str(pending[0]["user_code"])
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no device code was requested within {timeout_s:g} s")
            time.sleep(0.02)

    def approve_device_code(self, user_code: str, user: str = "analyst") -> None:
        """The person signs in as `user` and approves: the next poll gets tokens."""
        self._delegation.approve(user_code, user)

    def decline_device_code(self, user_code: str) -> None:
        self._delegation.decline(user_code)

    def expire_device_code(self, user_code: str) -> None:
        self._delegation.expire(user_code)

    def slow_down_device_code(self, user_code: str, polls: int = 1) -> None:
        """The next `polls` polls of this code answer `slow_down`."""
        self._delegation.slow_down(user_code, polls)

    def set_device_auto_approve(self, user: str | None, after_polls: int = 2) -> None:
        """Approve every device code as `user` when its `after_polls`-th poll arrives (None: off)."""
        self._delegation.set_auto_approve(user, after_polls)

    def refuse_refresh(self, user: str, code: int) -> None:
        """Every refresh token `user` holds so far fails with AADSTS`code` (700082, 50173, 70043,
        50076, 50078 or 53003); tokens from a later sign-in work."""
        self._delegation.refuse_refresh(user, code)

    def revoke_refresh_tokens(self, user: str) -> None:
        """An admin revoked the user's sessions: their refresh tokens fail with AADSTS50173."""
        self._delegation.refuse_refresh(user, 50173)

    def expire_refresh_tokens(self, user: str) -> None:
        """The user's refresh tokens have been inactive too long: AADSTS700082."""
        self._delegation.refuse_refresh(user, 700082)

    def block_device_flow(self, user: str, blocked: bool = True) -> None:
        """Conditional Access blocks the device code flow for `user` (AADSTS53003 on redemption)."""
        self._delegation.block_device_flow(user, blocked)

    def set_public_client_flows(self, app: str, enabled: bool) -> None:
        """Flip "Allow public client flows" on an app registration."""
        self._delegation.set_public_client(self.directory.apps[app], enabled)

    def issued_delegated_secrets(self) -> dict[str, list[str]]:
        """{"refresh token": [...], "device code": [...]}: everything of the kind this emulator handed
        out, for a client's secrets audit (id and access tokens are JWTs, found by their shape)."""
        return self._delegation.issued_secrets()

    def refresh_tokens_issued(self, user: str | None = None) -> int:
        return self._delegation.refresh_tokens_issued(user)


def _serve(server: TlsHttpServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return thread


def _halt(server: TlsHttpServer, thread: threading.Thread | None) -> None:
    """Stop a listener: no new connections, every open one shut, its serving thread joined."""
    server.shutdown()
    server.server_close()
    server.close_connections()
    if thread is not None:
        thread.join(5)
