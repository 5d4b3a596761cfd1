"""The emulated Defender for Endpoint API: `GET /api/ips/{ip}/stats` (and `/api/v1.0/...`).

Check order, as a request walks through a real API gateway: route, then authentication (401) and
authorisation (403), then throttling (429), then input validation (400), then the answer. So a
request with a bad IP and no token gets 401, a throttled one with a bad IP gets 429, and a 400 uses
up a slot in the rate-limit window (it reached the service).

Response generations (see emulator/README.md): `current` (`organizationPrevalence` int; never seen
-> 200 with 0), `legacy` (`orgPrevalence` string; never seen -> 404), `both` (both fields; seven
fractional digits on timestamps).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import unquote

from emulator.addresses import InvalidIp, canonical_ip
from emulator.clock import EmulatedClock
from emulator.config import DEFENDER_AUDIENCES, IP_READ_ALL, Generation
from emulator.directory import Directory
from emulator.messages import JSON, Outcome, Request, Response
from emulator.orgdata import HORIZON_HOURS, TICKS_PER_SECOND, Organisation, from_ticks
from emulator.ratelimit import SlidingWindowLimiter, retry_after_header
from emulator.tokens import TokenRejected, TokenService

ODATA_JSON = "application/json; odata.metadata=minimal; charset=utf-8"
_INT32 = re.compile(r"^\s*[+-]?\d{1,10}\s*$")
_STATS_TYPE = "microsoft.windowsDefenderATP.api.InOrgIPStats"


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message, "target": str(uuid.uuid4())}}


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, error_body(code, message), headers, content_type=JSON)


def format_timestamp(ticks: int | None, generation: Generation) -> str | None:
    """`legacy`: whole seconds (as the older docs' example); `current`: up to seven fractional
    digits, trailing zeros dropped (OData style); `both`: always seven fractional digits."""
    if ticks is None:
        return None
    seconds = from_ticks(ticks).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{ticks % TICKS_PER_SECOND:07d}"
    if generation == "legacy":
        return f"{seconds}Z"
    if generation == "current":
        fraction = fraction.rstrip("0")
        return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"
    return f"{seconds}.{fraction}Z"


def _window_text(window_s: float) -> str:
    if window_s % 3600 == 0:
        hours = int(window_s // 3600)
        return "1 hour" if hours == 1 else f"{hours} hours"
    if window_s % 60 == 0:
        minutes = int(window_s // 60)
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return f"{window_s:g} seconds"


class DefenderApi:
    def __init__(self, org: Organisation, tokens: TokenService, directory: Directory,
                 limiter: SlidingWindowLimiter, clock: EmulatedClock, base_url: Callable[[], str],
                 generation: Callable[[], Generation], retry_after_style: str) -> None:
        self._org = org
        self._tokens = tokens
        self._directory = directory
        self._limiter = limiter
        self._clock = clock
        self._base_url = base_url
        self._generation = generation
        self._retry_style = retry_after_style

    @staticmethod
    def is_api(path: str) -> bool:
        lowered = path.lower()
        return lowered == "/api" or lowered.startswith("/api/")

    @staticmethod
    def match(path: str) -> tuple[str, str] | None:
        """(version prefix, raw ip segment) for a stats path, else None. Fixed words are
        case-insensitive, as in ASP.NET routing."""
        parts = path.split("/")
        if len(parts) == 6 and parts[2].lower() == "v1.0":
            prefix, parts = "/api/v1.0", [*parts[:2], *parts[3:]]
        else:
            prefix = "/api"
        if (len(parts) == 5 and parts[0] == "" and parts[1].lower() == "api" and parts[2].lower() == "ips"
                and parts[4].lower() == "stats" and parts[3]):
            return prefix, parts[3]
        return None

    def handle(self, request: Request) -> Outcome:
        matched = self.match(request.path)
        if matched is None:
            return Outcome(api_error(404, "NotFound", f"No HTTP resource was found that matches the request URI "
                                                      f"'{request.path}'."), detail="no such route")
        if request.method != "GET":
            return Outcome(api_error(405, "MethodNotAllowed",
                                     f"The requested resource does not support http method '{request.method}'."),
                           detail="method not allowed")
        prefix, ip_segment = matched

        # 1. Authentication and authorisation.
        header = request.header("authorization")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Outcome(self._unauthorized(), detail="no bearer token")
        signed = self._tokens.signed_claims_or_none(token)
        client_id = str(signed["appid"]) if signed and "appid" in signed else None
        tenant_id = str(signed["tid"]) if signed and "tid" in signed else None
        try:
            claims = self._tokens.verify(token, DEFENDER_AUDIENCES)
        except TokenRejected as why:
            return Outcome(self._unauthorized(), client_id, tenant_id, detail=str(why))
        if self._directory.tenant_by_id(str(claims.get("tid", ""))) is None or \
                claims.get("iss") != self._tokens.issuer(str(claims.get("tid"))):
            return Outcome(self._unauthorized(), client_id, tenant_id, detail="unknown tenant or issuer")
        refused = self._authorise(claims)
        if refused is not None:
            return Outcome(api_error(403, "Forbidden", refused[0]), client_id, tenant_id, detail=refused[1])

        # 2. Throttling, per (tenant, application).
        decision = self._limiter.acquire((str(tenant_id), str(client_id)))
        if not decision.allowed:
            retry = retry_after_header(decision.wait_s, self._clock.time_scale, self._retry_style)
            calls, window = decision.limit or (0, 0.0)
            return Outcome(api_error(429, "TooManyRequests",
                                     f"API calls quota exceeded! Maximum allowed: {calls} calls per "
                                     f"{_window_text(window)}. Try again in {retry} seconds.",
                                     headers={"Retry-After": retry}),
                           client_id, tenant_id, detail=f"throttled by {calls}/{window:g}s", throttled=True)

        # 3. Input.
        ip_text = unquote(ip_segment)
        try:
            ip = canonical_ip(ip_text)
        except InvalidIp:
            return Outcome(api_error(400, "InvalidIpAddress", f"Invalid IP address: '{ip_text}'."),
                           client_id, tenant_id, detail="invalid ip")
        hours = self._lookback(request)
        if hours is None:
            return Outcome(api_error(400, "InvalidInput",
                                     f"Invalid input: lookBackHours must be an integer between 1 and "
                                     f"{HORIZON_HOURS}. Maximum Value for Lookbackhours is 720 Hours (30 days)."),
                           client_id, tenant_id, detail="invalid lookBackHours")

        # 4. The answer, computed.
        return Outcome(self.answer(ip, hours, prefix), client_id, tenant_id,
                       detail=f"user {claims['upn']}" if "upn" in claims else None)

    def _authorise(self, claims: dict[str, object]) -> tuple[str, str] | None:
        """(message, log detail) when the token may not read IP statistics. An application token
        needs the Ip.Read.All role; a delegated one (it has `scp`) needs the Ip.Read.All scope and a
        user holding Defender's "View data" role permission."""
        if "scp" not in claims:
            roles = claims.get("roles") or []
            if not isinstance(roles, list) or IP_READ_ALL not in roles:
                return ("The application does not have any of the required application permissions "
                        f"({IP_READ_ALL}) to access the resource.", f"roles={roles}")
            return None
        scopes = str(claims.get("scp", "")).split()
        if IP_READ_ALL not in scopes:
            return (f"Missing required delegated permission ({IP_READ_ALL}) in the token's scopes.",
                    f"scp={' '.join(scopes)}")
        user = self._directory.user_by_oid(str(claims.get("oid", "")))
        if user is None or not user.view_data:
            return (f"User {claims.get('upn', '')} does not have the required role permission (View data) "
                    "to access the resource.", f"user {claims.get('upn', '')} without View data")
        return None

    def answer(self, ip: str, hours: int, prefix: str = "/api", now: datetime | None = None) -> Response:
        generation = self._generation()
        found = self._org.stats_detail(ip, hours, now)
        if found.prevalence == 0 and generation == "legacy":
            return api_error(404, "ResourceNotFound", f"IP address {ip} was not found.")
        body: dict[str, object] = {
            "@odata.context": f"{self._base_url()}{prefix}/$metadata#{_STATS_TYPE}",
            "ipAddress": ip,
        }
        if generation in ("legacy", "both"):
            body["orgPrevalence"] = str(found.prevalence)
        if generation in ("current", "both"):
            body["organizationPrevalence"] = found.prevalence
        body["orgFirstSeen"] = format_timestamp(found.first_seen_ticks, generation)
        body["orgLastSeen"] = format_timestamp(found.last_seen_ticks, generation)
        return Response.json(200, body, content_type=ODATA_JSON)

    @staticmethod
    def _lookback(request: Request) -> int | None:
        values = [v for k, v in request.query if k.lower() == "lookbackhours"]
        if not values:
            return HORIZON_HOURS
        text = values[0]
        if not _INT32.match(text):
            return None
        hours = int(text)
        return hours if 1 <= hours <= HORIZON_HOURS else None

    @staticmethod
    def _unauthorized() -> Response:
        return api_error(401, "Unauthorized", "Authorization has been denied for this request.",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
