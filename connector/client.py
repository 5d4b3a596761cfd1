"""The Defender API call, with the retry policy a SOC can leave unattended.

One lookup owns a deadline (the per-item time budget). Within it the client retries what is worth
retrying — 429 after its Retry-After, 500/502/503/504 and connection failures with exponential
backoff and full jitter, one 401 with a fresh token — at most MAX_ATTEMPTS_PER_ITEM calls in all,
and none while the shared breaker says Defender is down (connector.breaker) — and turns everything
else into a :class:`ConnectorError` of the documented category as soon as it is known to be final.
A Retry-After of 0, negative, past or unreadable is treated as none (retry.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import requests

from connector.auth import TokenProvider, token_claims
from connector.breaker import Breaker
from connector.endpoints import REQUIRED_ROLE
from connector.errors import (
    AuthenticationError,
    ConnectorError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
    UnexpectedResponseError,
)
from connector.lanes import Admission
from connector.mapping import not_seen, statistics_from_body
from connector.ratelimit import RateGate
from connector.results import OrgStatistics
from connector.retry import MAX_ATTEMPTS_PER_ITEM, backoff_s, call_reserve_s, wait_or_raise
from connector.settings import Settings
from connector.transport import connection_failure, is_certificate_failure, timeout_within

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
"""A statistics answer is a few hundred bytes; anything past a mebibyte is not one."""
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
DEFAULT_RETRY_AFTER_S = 10.0
"""Used when a 429 arrives without a usable Retry-After (Defender always sends one; a proxy may not)."""


class _Answer(NamedTuple):
    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds (integer or decimal) or an HTTP date. A hint that asks
    for no wait at all (0, negative, a date already past, NaN) or cannot be read is no hint: the caller
    backs off as it would without one, rather than re-send at once."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = moment.timestamp() - time.time()
    if not 0 < seconds < float("inf"):  # also false for NaN
        return None
    return min(seconds, 3600.0)


class MdeClient:
    """``GET /api/ips/{ip}/stats`` for one tenant."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        tokens: TokenProvider,
        gate: RateGate,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS_PER_ITEM,
        breaker: Breaker | None = None,
    ) -> None:
        self._settings = settings
        self._session = session
        self._tokens = tokens
        self._gate = gate
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._breaker = breaker or Breaker.off()
        self._api_url = settings.endpoints.api_url

    def ip_stats(self, ip: str, lookback_hours: int, deadline: float,
                 admission: Admission | None = None) -> OrgStatistics:
        """Statistics for one canonical IP; raises ConnectorError when no answer can be had in time.
        ``admission`` is the lookup's lane and budget in the rate limit (automation and item_budget_s by
        default), and adds up the time the lookup waits there."""
        admission = admission or Admission(budget_s=self._settings.item_budget_s)
        reserve_s = call_reserve_s(self._settings.timeout_s, admission.budget_s)
        url = f"{self._api_url}/api/ips/{quote(ip, safe=':.')}/stats"
        attempt = 0
        refreshed = False
        previous: ConnectorError | None = None
        while True:
            attempt += 1
            probe = self._breaker.before_call()  # while Defender is down: fail at once, no call
            # The token first: the gate admits a call for *now*, and the server counts it when it
            # arrives, so nothing slow (a sign-in, a wait for the token lock) may come in between.
            token = self._tokens.get(deadline)
            admission.waited_s += self._gate.acquire(deadline - reserve_s, admission.lane)
            try:
                answer = self._send(url, lookback_hours, token, deadline)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                failure: ConnectorError = connection_failure(exc, "the Defender API", self._api_url)
                if is_certificate_failure(exc):
                    raise failure from None  # an untrusted certificate stays untrusted: no retry
                outage = self._breaker.failed(type(exc).__name__, probe=probe)
                if outage is not None:
                    raise outage from None
                if previous is not None and time.monotonic() >= deadline:
                    # The budget cut this last try short: the service's own earlier answer says more.
                    raise previous from None
                previous = failure
                self._backoff_or_raise(attempt, None, deadline, failure, f"{type(exc).__name__}")
                continue
            status = answer.status
            if status not in RETRYABLE_STATUSES:
                self._breaker.succeeded()
            if status == 200:
                return statistics_from_body(ip, lookback_hours, self._json(answer))
            if status == 404:
                return self._not_found(ip, lookback_hours, answer)
            code, message, correlation = self._error_fields(answer)
            if status == 401 and not refreshed:
                log.debug("401 %s: discarding the token and retrying once with a fresh one", code)
                self._tokens.invalidate(token)
                refreshed = True
                continue
            if status == 429:
                wait = retry_after_seconds(answer.headers.get("Retry-After"))
                wait = DEFAULT_RETRY_AFTER_S if wait is None else wait
                self._gate.pause(wait)
                failure = previous = RateLimitedError(
                    f"Defender is throttling this application (429 {code or 'TooManyRequests'}); "
                    f"retry after {wait:.0f} s.",
                    http_status=429, code=code, correlation_id=correlation, retry_after_s=wait)
                self._wait_or_raise(attempt, wait, deadline, failure, "429")
                continue
            if status in RETRYABLE_STATUSES:
                outage = self._breaker.failed(f"{status} {code or ''}".rstrip(), probe=probe)
                if outage is not None:
                    raise outage from None
                failure = previous = UnavailableError(
                    f"The Defender API is unavailable ({status} {code or ''}".rstrip() + "); retry later.",
                    http_status=status, code=code, correlation_id=correlation)
                hinted = retry_after_seconds(answer.headers.get("Retry-After"))
                self._backoff_or_raise(attempt, hinted, deadline, failure, str(status))
                continue
            raise self._final_error(status, code, message, correlation, token, ip)

    # -- one request ------------------------------------------------------------------------------

    def _send(self, url: str, lookback_hours: int, token: str, deadline: float) -> _Answer:
        default: tuple[float, float] = getattr(self._session, "default_timeout", (10.0, self._settings.timeout_s))
        timeout = timeout_within(default, deadline)
        started = time.monotonic()
        with self._session.get(
            url,
            params={"lookBackHours": str(lookback_hours)},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        ) as response:
            body = self._read_capped(response, deadline)
            log.debug("GET %s?lookBackHours=%d -> %d in %.0f ms", url, lookback_hours, response.status_code,
                      (time.monotonic() - started) * 1000)
            return _Answer(response.status_code, response.headers, body)

    @staticmethod
    def _read_capped(response: requests.Response, deadline: float) -> bytes:
        """The body, refused past MAX_BODY_BYTES (declared or actual) and given up past the deadline."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise UnexpectedResponseError(
                f"The API answered with a {int(declared)} byte body, over the {MAX_BODY_BYTES} byte cap.",
                http_status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise UnexpectedResponseError(
                    f"The API answered with a body over the {MAX_BODY_BYTES} byte cap.",
                    http_status=response.status_code)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise requests.exceptions.ReadTimeout("the answer was still arriving at the item's deadline")
        return b"".join(chunks)

    # -- retry decisions --------------------------------------------------------------------------

    def _wait_or_raise(self, attempt: int, wait: float, deadline: float, failure: ConnectorError, why: str) -> None:
        wait_or_raise(wait, deadline, failure, why, self._sleep, attempt=attempt, max_attempts=self._max_attempts)

    def _backoff_or_raise(
        self, attempt: int, hinted: float | None, deadline: float, failure: ConnectorError, why: str
    ) -> None:
        wait = hinted if hinted is not None else backoff_s(attempt)
        self._wait_or_raise(attempt, wait, deadline, failure, why)

    # -- answers ----------------------------------------------------------------------------------

    @staticmethod
    def _json(answer: _Answer) -> Any:
        content_type = answer.headers.get("Content-Type", "")
        if "json" not in content_type.lower():
            raise UnexpectedResponseError(
                f"The API answered {answer.status} with content type '{content_type[:60]}' instead of JSON "
                "(a proxy or portal page in the way? check api_url and proxy).", http_status=answer.status)
        try:
            return json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            raise UnexpectedResponseError(
                f"The API answered {answer.status} with a body that is not valid JSON.",
                http_status=answer.status) from None

    @staticmethod
    def _error_fields(answer: _Answer) -> tuple[str | None, str | None, str | None]:
        """Defender's error code, message and correlation id (``target``), when the body has them."""
        try:
            error = json.loads(answer.body).get("error")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return None, None, None
        if not isinstance(error, dict):
            return None, None, None

        def text(key: str) -> str | None:
            value = error.get(key)
            return str(value)[:300] if isinstance(value, str | int) else None

        return text("code"), text("message"), text("target")

    def _not_found(self, ip: str, lookback_hours: int, answer: _Answer) -> OrgStatistics:
        """The older API's 'never seen' — only when the 404 really is Defender's."""
        code, _, correlation = self._error_fields(answer)
        if code in ("NotFound", "ResourceNotFound"):
            return not_seen(ip, lookback_hours)
        raise UnexpectedResponseError(
            f"The API answered 404 without Defender's error body: api_url ({self._api_url}) may not be the "
            "Defender API.", http_status=404, code=code, correlation_id=correlation)

    def _final_error(
        self, status: int, code: str | None, message: str | None, correlation: str | None, token: str, ip: str
    ) -> ConnectorError:
        fields: dict[str, Any] = {"http_status": status, "code": code, "correlation_id": correlation}
        if status == 400:
            return InvalidInputError(
                f"Defender refused the request for {ip} ({code or 'BadRequest'}): {message or 'bad request'}",
                **fields)
        claims = token_claims(token)
        audience = claims.get("aud")
        roles = claims.get("roles") or []
        scopes = str(claims.get("scp", "")).split()
        expected_audience = self._settings.endpoints.scope.removesuffix("/.default")
        if status == 401:
            if audience and str(audience).rstrip("/") != expected_audience.rstrip("/"):
                why = (f"the token's audience is '{audience}', not '{expected_audience}': check the scope "
                       "override and the cloud setting")
            else:
                why = "the API refused a freshly issued token: check the cloud/region (api_url) and the scope"
            return AuthenticationError(f"Defender rejected the access token twice (401 {code or ''}): {why}.",
                                       **fields)
        if status == 403:
            if REQUIRED_ROLE not in roles and REQUIRED_ROLE not in scopes:
                why = (f"the application's token has no {REQUIRED_ROLE} permission: in the app registration "
                       f"add the WindowsDefenderATP application permission {REQUIRED_ROLE} and grant admin consent")
            else:
                why = (f"the token has {REQUIRED_ROLE} but Defender refused ({code}): check that the feature is "
                       "enabled for the tenant and, for delegated access, the user's 'View Data' role")
            return PermissionDeniedError(f"Permission denied (403): {why}.", **fields)
        return UnexpectedResponseError(
            f"The API answered with an unexpected status {status} {code or ''}".rstrip() + ".", **fields)
