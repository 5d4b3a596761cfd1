"""The control endpoint, for a standalone emulator (same HTTPS port, under /_emulator/).

    GET    /_emulator/info            tenant, apps (ids and roles, no secrets), URLs, settings
    POST   /_emulator/faults          queue a fault: Fault's fields as JSON, plus "count"
                                       ("body" as text or "body_b64"; "count": null = until cleared)
    GET    /_emulator/faults          pending faults
    DELETE /_emulator/faults          clear pending faults
    GET    /_emulator/counters        emu.counters()
    GET    /_emulator/log             emu.request_log()
    POST   /_emulator/reset           body (optional) {"observations", "rate_limits", "faults"}:
                                       booleans, each defaulting to true
    POST   /_emulator/generation      {"generation": "current" | "legacy" | "both"}
    POST   /_emulator/clock           {"advance_s": seconds} (emulated seconds)
    POST   /_emulator/revoke-tokens   every token issued so far stops working

Delegated sign-in (the person at the browser, and the tenant's policies):

    GET    /_emulator/device-codes                 pending device codes (user codes, no device codes)
    POST   /_emulator/device-codes/approve         {"user_code", "user"}
    POST   /_emulator/device-codes/decline         {"user_code"}
    POST   /_emulator/device-codes/expire          {"user_code"}
    POST   /_emulator/device-codes/slow-down       {"user_code", "polls": 1}
    POST   /_emulator/device-codes/auto-approve    {"user": name | null, "after_polls": 2}
    POST   /_emulator/users/revoke                 {"user"}: refresh tokens fail with AADSTS50173
    POST   /_emulator/users/expire                 {"user"}: refresh tokens fail with AADSTS700082
    POST   /_emulator/users/refuse-refresh         {"user", "code"}: 700082, 50173, 70043, 50076, 50078, 53003
    POST   /_emulator/users/block-device-flow      {"user", "blocked": true}: Conditional Access, AADSTS53003
    POST   /_emulator/apps/public-client           {"app", "enabled"}: "Allow public client flows"

Managed identities (the host's identity endpoint, served on emu.identity_url):

    POST   /_emulator/identities/assigned          {"identity", "assigned"}: attach it to the host or take it off
    POST   /_emulator/identities/grant             {"identity", "role": "Ip.Read.All"}: in the next token issued
    POST   /_emulator/identities/forget-tokens     empty the platform's token cache

It is unauthenticated: it listens on loopback only, like the rest of the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator.faults import Fault
from emulator.messages import Request, Response

if TYPE_CHECKING:
    from emulator.service import Emulator


def _bad(message: str, status: int = 400) -> Response:
    return Response.json(status, {"error": message})


class Control:
    def __init__(self, emulator: Emulator) -> None:
        self._emu = emulator

    def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/").removeprefix("/_emulator")
        try:
            data = self._json(request)
        except ValueError as exc:
            return _bad(f"invalid JSON body: {exc}")
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/info"): lambda: self._emu.info(),
            ("GET", "/faults"): lambda: {"pending": self._emu.pending_faults()},
            ("POST", "/faults"): lambda: self._add_fault(data),
            ("DELETE", "/faults"): lambda: self._clear_faults(),
            ("GET", "/counters"): lambda: self._emu.counters(),
            ("GET", "/log"): lambda: {"requests": self._emu.request_log()},
            ("POST", "/reset"): lambda: self._reset(data),
            ("POST", "/generation"): lambda: self._generation(data),
            ("POST", "/clock"): lambda: self._clock(data),
            ("POST", "/revoke-tokens"): lambda: self._revoke(),
            ("GET", "/device-codes"): lambda: {"pending": self._emu.pending_device_codes()},
            ("POST", "/device-codes/approve"): lambda: self._done(
                self._emu.approve_device_code(str(data["user_code"]), str(data.get("user", "analyst")))),
            ("POST", "/device-codes/decline"): lambda: self._done(
                self._emu.decline_device_code(str(data["user_code"]))),
            ("POST", "/device-codes/expire"): lambda: self._done(
                self._emu.expire_device_code(str(data["user_code"]))),
            ("POST", "/device-codes/slow-down"): lambda: self._done(
                self._emu.slow_down_device_code(str(data["user_code"]), int(data.get("polls", 1)))),
            ("POST", "/device-codes/auto-approve"): lambda: self._done(
                self._emu.set_device_auto_approve(data.get("user"), int(data.get("after_polls", 2)))),
            ("POST", "/users/revoke"): lambda: self._done(self._emu.revoke_refresh_tokens(str(data["user"]))),
            ("POST", "/users/expire"): lambda: self._done(self._emu.expire_refresh_tokens(str(data["user"]))),
            ("POST", "/users/refuse-refresh"): lambda: self._done(
                self._emu.refuse_refresh(str(data["user"]), int(data["code"]))),
            ("POST", "/users/block-device-flow"): lambda: self._done(
                self._emu.block_device_flow(str(data["user"]), bool(data.get("blocked", True)))),
            ("POST", "/apps/public-client"): lambda: self._done(
                self._emu.set_public_client_flows(str(data["app"]), bool(data["enabled"]))),
            ("POST", "/identities/assigned"): lambda: self._done(
                self._emu.set_identity_assigned(str(data["identity"]), bool(data["assigned"]))),
            ("POST", "/identities/grant"): lambda: self._done(
                self._emu.grant_identity_role(str(data["identity"]), str(data.get("role", "Ip.Read.All")))),
            ("POST", "/identities/forget-tokens"): lambda: self._done(self._emu.forget_identity_tokens()),
        }
        action = routes.get((request.method, path))
        if action is None:
            known = sorted({p for _, p in routes})
            if any(p == path for p in known):
                return _bad(f"method {request.method} not allowed on /_emulator{path}", 405)
            return _bad(f"no control route /_emulator{path}; known: {', '.join(known)}", 404)
        try:
            return Response.json(200, action())
        except (ValueError, TypeError, KeyError) as exc:
            return _bad(str(exc))

    @staticmethod
    def _done(_: None) -> dict[str, Any]:
        return {"done": True}

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def _add_fault(self, data: dict[str, Any]) -> dict[str, Any]:
        count = data.get("count", 1)
        self._emu.inject_fault(Fault.from_json(data), count=None if count is None else int(count))
        return {"pending": self._emu.pending_faults()}

    def _clear_faults(self) -> dict[str, Any]:
        self._emu.clear_faults()
        return {"pending": []}

    def _reset(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = set(data) - {"observations", "rate_limits", "faults"}
        if unknown:
            raise ValueError(f"unknown reset fields: {sorted(unknown)}")
        done = []
        if data.get("observations", True):
            self._emu.reset_observations()
            done.append("observations")
        if data.get("rate_limits", True):
            self._emu.reset_rate_limits()
            done.append("rate_limits")
        if data.get("faults", True):
            self._emu.clear_faults()
            done.append("faults")
        return {"reset": done}

    def _generation(self, data: dict[str, Any]) -> dict[str, Any]:
        self._emu.set_generation(data["generation"])
        return {"generation": self._emu.generation}

    def _clock(self, data: dict[str, Any]) -> dict[str, Any]:
        self._emu.advance_clock(float(data["advance_s"]))
        return {"now": self._emu.now().isoformat()}

    def _revoke(self) -> dict[str, Any]:
        self._emu.revoke_tokens()
        return {"revoked": True}
