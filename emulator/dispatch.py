"""One request's path through the emulator: classify the route, apply any scripted fault, let the
right service answer, record what happened."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from emulator.defender import DefenderApi, api_error
from emulator.entra import Entra, EntraError
from emulator.faults import Fault, FaultQueue
from emulator.identity import IdentityEndpoint, is_identity_path
from emulator.messages import Outcome, Request, Response
from emulator.observe import Observations
from emulator.server import Reply
from emulator.tokens import TokenService

CONTROL_PREFIX = "/_emulator"
_DEVICE_LOGIN = (b"<!doctype html><title>Enter code</title><h1>mde-emulator: device sign-in</h1>"
                 b"<p>This emulator has no sign-in page. A test or the demo approves a user code through "
                 b"<code>POST /_emulator/device-codes/approve</code> (or <code>Emulator.approve_device_code</code>), "
                 b"or the emulator approves it by itself when started with an auto-approving user.</p>")


def classify(path: str) -> tuple[str, tuple[str, str] | None]:
    """Route name ('api', 'token', 'devicecode', 'discovery', 'identity', 'control' or 'other') and
    Entra's (kind, tenant)."""
    if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
        return "control", None
    if is_identity_path(path):
        return "identity", None
    if DefenderApi.is_api(path):
        return "api", None
    entra = Entra.classify(path)
    if entra is None:
        return "other", None
    return (entra[0] if entra[0] in ("token", "devicecode") else "discovery"), entra


class Dispatcher:
    def __init__(self, entra: Entra, api: DefenderApi, tokens: TokenService, faults: FaultQueue,
                 observations: Observations, control: Callable[[Request], Response],
                 stopping: threading.Event, identity: IdentityEndpoint | None = None,
                 identity_listener: bool = False) -> None:
        self._entra = entra
        self._api = api
        self._tokens = tokens
        self._faults = faults
        self._observations = observations
        self._control = control
        self._stopping = stopping
        self._identity = identity
        self._identity_listener = identity_listener  # the host's plain-HTTP identity endpoint: nothing else

    def __call__(self, request: Request) -> Reply:
        route, entra = classify(request.path)
        if route == "control" and not self._identity_listener:
            return Reply(self._control(request))
        if (route == "identity") != self._identity_listener:
            route, entra = "other", None
        started = time.perf_counter()
        fault = self._faults.take(route)
        if fault is not None and fault.delay_s:
            self._stopping.wait(fault.delay_s)
            if self._stopping.is_set():  # shutting down mid-delay: hang up rather than answer
                return Reply(None, "reset")
        if fault is not None and (fault.reset or fault.status is not None):
            client_id, tenant_id = self._identify(request, route)
            outcome = Outcome(self._fault_response(route, fault, request) if not fault.reset else Response(0),
                              client_id, tenant_id, detail="injected fault")
        else:
            outcome = self._answer(request, route, entra)
        mode = "normal"
        response: Response | None = outcome.response
        if fault is not None:
            if fault.reset:
                mode, response = "reset", None
            else:
                assert response is not None
                self._distort(response, fault)
                mode = "truncated" if fault.truncated else "normal"
        self._observations.record(
            method=request.method, path=request.raw_path, route=route,
            status=None if response is None else response.status, client_id=outcome.client_id,
            tenant_id=outcome.tenant_id, fault=None if fault is None else fault.describe(),
            detail=outcome.detail, duration_s=time.perf_counter() - started)
        return Reply(response, mode)  # type: ignore[arg-type]

    def _answer(self, request: Request, route: str, entra: tuple[str, str] | None) -> Outcome:
        if route == "api":
            return self._api.handle(request)
        if route == "identity" and self._identity is not None:
            return self._identity.handle(request)
        if entra is not None:
            return self._entra.handle(request, *entra)
        if request.path.rstrip("/").lower() == "/devicelogin":
            return Outcome(Response(200, _DEVICE_LOGIN, {}, "text/html; charset=utf-8"), detail="device login page")
        return Outcome(api_error(404, "NotFound", f"No resource at '{request.path}'."), detail="unknown path")

    def _identify(self, request: Request, route: str) -> tuple[str | None, str | None]:
        """Who sent a request that a fault answers (best effort, for per-app counters)."""
        if route in ("token", "devicecode"):
            return self._entra.claimed_client(request), None
        scheme, _, token = request.header("authorization").partition(" ")
        if route == "api" and scheme.lower() == "bearer":
            claims = self._tokens.signed_claims_or_none(token.strip())
            if claims:
                return str(claims.get("appid")), str(claims.get("tid"))
        return None, None

    def _fault_response(self, route: str, fault: Fault, request: Request) -> Response:
        status = fault.status or 500
        body = fault.body_bytes
        if body is not None:
            return Response(status, body, {}, "application/json; charset=utf-8")
        if route == "identity":  # the platform's shape (App Service); IMDS clients read it as an error too
            return Response.json(status, {"statusCode": status, "message": "Injected fault (mde-emulator)."})
        if route in ("token", "devicecode", "discovery"):
            transient = status >= 500 or status == 429
            error = EntraError(status, "temporarily_unavailable" if transient else "invalid_request",
                               90033 if transient else 50000,
                               "A transient error has occurred. Please try again." if transient else
                               "There was an error issuing a token or an issue with our sign-in service.")
            return self._entra.error_response(error, Entra.correlation(request))
        codes = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
                 503: "ServiceUnavailable", 504: "GatewayTimeout"}
        return api_error(status, codes.get(status, "Error"), "Injected fault (mde-emulator).")

    @staticmethod
    def _distort(response: Response, fault: Fault) -> None:
        response.headers.update(fault.headers)
        if fault.content_type is not None:
            response.content_type = fault.content_type
        if fault.malformed:
            response.body = response.body[: len(response.body) // 2] or b"{"
