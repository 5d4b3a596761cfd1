"""The connector's actions, platform-neutral: parameters in, one standard result per item out.

An action never raises for bad input, bad configuration or a failing service: each item gets a
result, in input order, and a failure in one item does not stop the others.

Every SOAR platform runs an action in a fresh process, so a Connector builds only what the answer
needs, when it needs it: a result-cache hit opens no rate gate and reads no token; a lookup whose
token is in the shared cache imports no MSAL (auth.py); a get_ip_statistics call of the usual shape
compiles no JSON Schema; the delegated sign-in machinery loads only with auth_mode delegated.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.cache import ResultCache
from connector.endpoints import REQUIRED_ROLE
from connector.errors import ConnectorError, InvalidInputError, PermissionDeniedError
from connector.failover import noting_degradation, open_shared_gate, open_shared_store
from connector.inputs import (
    DEFAULT_LOOKBACK_HOURS,
    ParsedItem,
    parse_ip_items,
    parse_lane,
    parse_lookback_hours,
    show,
)
from connector.interpret import Judgement, describe, interpret, scope_summary, summary_of
from connector.lanes import DEFAULT_LANE, Admission, Lane
from connector.manifest import input_validator
from connector.models import ShapeError, load, to_builtins
from connector.results import ActionResult, OrgStatistics
from connector.retry import call_reserve_s
from connector.settings import Settings
from connector.signin import (
    COMPLETE_SIGN_IN,
    SIGN_IN_ACTIONS,
    SIGN_OUT,
    START_SIGN_IN,
    complete_sign_in,
    sign_out,
    start_sign_in,
)
from connector.state import StateStore
from connector.wording import Words, speak_result

if TYPE_CHECKING:
    from connector.auth import TokenProvider
    from connector.breaker import Breaker
    from connector.client import MdeClient
    from connector.ratelimit import RateGate
    from connector.transport import ConnectorSession

log = logging.getLogger(__name__)

GET_IP_STATISTICS = "get_ip_statistics"
TEST_CONNECTIVITY = "test_connectivity"
ACTIONS = (GET_IP_STATISTICS, TEST_CONNECTIVITY, *SIGN_IN_ACTIONS)
CONNECTIVITY_PROBE_IP = "127.0.0.1"
"""Looked up by test_connectivity: a harmless address that proves the API answers."""

Progress = Callable[[int, int], None]


def default_state_dir() -> Path:
    """The user's XDG state directory for this connector."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mde-ipstats"


class Connector:
    """One configured connection to a tenant's Defender API, with its shared state."""

    def __init__(
        self,
        settings: Settings,
        *,
        state_dir: Path | None = None,
        token_store: StateStore | None = None,
        shared_store: StateStore | None = None,
        gate: RateGate | None = None,
        installation_key: bytes | None = None,
        words: Words | None = None,
    ) -> None:
        self.settings = settings
        self.words = words
        self.state_dir = state_dir or default_state_dir()
        self.store = shared_store or open_shared_store(settings, self.state_dir)
        self.judgement = Judgement(settings.rare_device_threshold, settings.novelty_hours)
        self._token_store = token_store
        self._installation_key = installation_key
        if gate is not None:  # a platform's own ledger; otherwise opened on first use
            self.gate = gate

    # What a lookup may need, each built (and its modules imported) on first use: a result-cache hit uses
    # none of them but the identity, so a fresh process answered from the cache loads no HTTP stack, no
    # MSAL and no rate limiter; the delegated sign-in machinery loads only with auth_mode delegated.

    @property
    def cache(self) -> ResultCache:
        """Answers are cached per tenant and identity: the application, or the person signed in *now*,
        read from the store at each lookup, since another process may sign someone else in, or out
        (with nobody signed in, a delegated lookup fails here, before the cache, as it would before the API)."""
        if self.settings.auth_mode == "delegated":
            return self._results_of(self.tokens.identity())
        return self._application_results

    @cached_property
    def _application_results(self) -> ResultCache:
        from connector.credentials import application_identity, managed_identity_name

        if self.settings.auth_mode == "managed_identity":
            return self._results_of(managed_identity_name(self.settings))
        return self._results_of(application_identity(self.settings))

    def _results_of(self, identity: str) -> ResultCache:
        return ResultCache(self.store, self.settings.cache_ttl_s, self.settings.tenant_id, identity)

    @cached_property
    def session(self) -> ConnectorSession:
        from connector.transport import shared_session

        return shared_session(self.settings)

    @cached_property
    def tokens(self) -> TokenProvider:
        store = self._token_store or self.store
        if self.settings.auth_mode == "delegated":
            from connector.delegated import DelegatedTokenProvider

            return DelegatedTokenProvider(self.settings, self.session, store, self.state_dir, self._installation_key)
        if self.settings.auth_mode == "managed_identity":
            from connector.managed_identity import ManagedIdentityTokenProvider

            return ManagedIdentityTokenProvider(self.settings, self.session, store)
        from connector.auth import TokenProvider

        return TokenProvider(self.settings, self.session, store)

    @cached_property
    def gate(self) -> RateGate:
        return open_shared_gate(self.settings, self.state_dir)

    @cached_property
    def breaker(self) -> Breaker:
        """Shared through the same store as the result cache and locks: every worker learns of an outage once."""
        from connector.breaker import Breaker

        return Breaker.for_settings(self.settings, self.store)

    @cached_property
    def client(self) -> MdeClient:
        if self.settings.auth_mode == "delegated":
            from connector.delegated import DelegatedMdeClient

            return DelegatedMdeClient(self.settings, self.session, self.tokens, self.gate, breaker=self.breaker)
        if self.settings.auth_mode == "managed_identity":
            from connector.managed_identity import ManagedIdentityMdeClient

            return ManagedIdentityMdeClient(self.settings, self.session, self.tokens, self.gate, breaker=self.breaker)
        from connector.client import MdeClient

        return MdeClient(self.settings, self.session, self.tokens, self.gate, breaker=self.breaker)

    def close(self) -> None:
        # Only what was opened: a cache hit never opened the rate gate.
        for resource in (self.__dict__.get("gate"), self.store):
            closer = getattr(resource, "close", None)
            if callable(closer):
                closer()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- get_ip_statistics ------------------------------------------------------------------------

    def get_ip_statistics(self, params: Mapping[str, Any], progress: Progress | None = None) -> list[ActionResult]:
        items, hours_or_error, lane = parse_get_ip_statistics(params)
        results: list[ActionResult] = []
        total = len(items)
        for done, item in enumerate(items, start=1):
            with noting_degradation() as notes:
                result = self._answer(item, hours_or_error, lane)
            if notes:
                result = result.replace(degraded=True, warnings=[*result.warnings, *notes])
            results.append(speak_result(result, self.words))
            if progress is not None:
                progress(done, total)
        return results

    def _answer(self, item: ParsedItem, hours: int | InvalidInputError, lane: Lane | None) -> ActionResult:
        """One item's result; lane None is a lane input that was refused (hours then holds why)."""
        parameters = {"ip": item.ip or item.raw, "lookback_hours": hours if isinstance(hours, int) else None}
        if item.error is not None:
            return ActionResult.failure(GET_IP_STATISTICS, parameters, item.error, lane_only(lane))
        if isinstance(hours, InvalidInputError) or lane is None:
            assert isinstance(hours, InvalidInputError)
            summary = {**scope_summary(item.ip), **lane_only(lane)}
            return ActionResult.failure(GET_IP_STATISTICS, parameters, hours, summary)
        assert item.ip is not None
        admission = Admission(lane, self.settings.budget_s(lane))
        try:
            result = self.lookup(item.ip, hours, admission)
        except ConnectorError as exc:
            log.info("%s: %s (%s)", item.ip, exc.category.value, exc.message)
            result = ActionResult.failure(GET_IP_STATISTICS, parameters, exc, scope_summary(item.ip))
        result = result.replace(summary={**result.summary, **lane_summary(admission)})
        warnings = self.take_notices()
        return result.replace(warnings=warnings) if warnings else result

    def take_notices(self) -> list[str]:
        """What the state files went through during the last lookup (set aside as damaged, ...), said once
        by the result of the lookup that found it: the stores and the gate keep them until asked."""
        notices: list[str] = []
        for source in {id(s): s for s in (self.store, self._token_store, self.__dict__.get("gate")) if s}.values():
            take = getattr(source, "take_notices", None)
            if callable(take):
                notices.extend(take())
        return notices

    def lookup(self, ip: str, lookback_hours: int, admission: Admission | None = None) -> ActionResult:
        """One canonical IP: from the result cache when fresh (in every lane), else from the API (one
        fetch at a time), within the lane's time budget (``admission``: automation by default)."""
        admission = admission or Admission(DEFAULT_LANE, self.settings.budget_s(DEFAULT_LANE))
        deadline = time.monotonic() + admission.budget_s
        cache = self.cache
        cached = self._cached(cache, ip, lookback_hours)
        if cached is None:
            # Waiting on another worker's fetch of the same IP ends in time for a call of our own.
            wait_s = deadline - call_reserve_s(self.settings.timeout_s, admission.budget_s) - time.monotonic()
            with cache.single_flight(ip, lookback_hours, timeout_s=max(0.0, wait_s)):
                cached = self._cached(cache, ip, lookback_hours)
                if cached is None:
                    facts = self.client.ip_stats(ip, lookback_hours, deadline, admission)
                    if self._answered_as(cache.identity):
                        cache.put(ip, lookback_hours, to_builtins(facts))
                    return self._success(facts)
        # The cache keeps the facts; what they mean (ages above all) is judged now.
        facts, age_s = cached
        return self._success(facts).replace(cached=True, cache_age_s=round(age_s, 3))

    def _answered_as(self, identity: str) -> bool:
        """Whether the answer just fetched was asked for as identity: a delegated sign-in may have changed
        hands (in another process) after the lookup chose its cache entry, and one person's answer is
        never filed as another's. The application's identity cannot change under a Connector."""
        return self.settings.auth_mode != "delegated" or self.tokens.last_holder == identity

    @staticmethod
    def _cached(cache: ResultCache, ip: str, lookback_hours: int) -> tuple[OrgStatistics, float] | None:
        """A fresh cache entry's facts and age. An entry that does not hold the facts' shape (written by
        another version, or damaged) is a miss: the lookup asks Defender and overwrites it."""
        hit = cache.get(ip, lookback_hours)
        if hit is None:
            return None
        try:
            return load(OrgStatistics, hit.data), hit.age_s
        except ShapeError:
            log.warning("%s: ignoring a result-cache entry of an unknown shape", ip)
            return None

    def _success(self, facts: OrgStatistics) -> ActionResult:
        stats = interpret(facts, self.judgement)
        return ActionResult.model_construct(
            action=GET_IP_STATISTICS,
            status="success",
            message=describe(stats),
            parameters={"ip": stats.ipAddress, "lookback_hours": stats.lookBackHours},
            data=[to_builtins(stats)],
            summary=summary_of(stats),
        )

    # -- test_connectivity ------------------------------------------------------------------------

    def test_connectivity(self) -> ActionResult:
        """Proves, in order, sign-in, the Ip.Read.All permission in the token, and an API answer."""
        endpoints = self.settings.endpoints
        checks: dict[str, Any] = {"sign_in": False, "permission": False, "api": False,
                                  "login_url": endpoints.login_url, "api_url": endpoints.api_url,
                                  "token_audience": None, "token_roles": [], "user": None, "token_scopes": []}
        deadline = time.monotonic() + self.settings.item_budget_s
        try:
            token = self.tokens.get(deadline)
        except ConnectorError as exc:
            return _connectivity_failure("Sign-in failed", exc, checks)
        checks["sign_in"] = True
        from connector.auth import token_claims

        claims = token_claims(token)
        checks["token_audience"] = claims.get("aud")
        roles = claims.get("roles") or []
        checks["token_roles"] = sorted(str(r) for r in roles)
        if self.settings.auth_mode == "delegated":
            return self._delegated_connectivity(claims, checks, deadline)
        if self.settings.auth_mode == "managed_identity":
            return self._managed_identity_connectivity(claims, checks, deadline)
        if REQUIRED_ROLE not in roles and REQUIRED_ROLE not in str(claims.get("scp", "")).split():
            missing = PermissionDeniedError(
                f"Signed in, but the token has no {REQUIRED_ROLE} permission (roles: "
                f"{', '.join(checks['token_roles']) or 'none'}): add the WindowsDefenderATP application "
                f"permission {REQUIRED_ROLE} to the app registration and grant admin consent.")
            return _connectivity_failure("Permission check failed", missing, checks)
        checks["permission"] = True
        return self._probe_api(
            checks, deadline, failed="Signed in with the right permission, but the API call failed",
            succeeded=f"Connectivity OK: signed in to {endpoints.login_url}, token has {REQUIRED_ROLE}, "
                      f"and {endpoints.api_url} answered.")

    def _delegated_connectivity(self, claims: dict[str, Any], checks: dict[str, Any], deadline: float) -> ActionResult:
        """test_connectivity for a signed-in person: who, with which delegated scopes (scp), and
        whether Defender lets them read (a 403 names the View data role)."""
        endpoints = self.settings.endpoints
        user = str(claims.get("upn") or claims.get("unique_name") or claims.get("oid") or "the signed-in user")
        scopes = str(claims.get("scp", "")).split()
        shown = " ".join(scopes) or "none"
        checks["user"], checks["token_scopes"] = user, sorted(scopes)
        if REQUIRED_ROLE not in scopes:
            missing = PermissionDeniedError(
                f"Signed in as {user}, but the token's scp ({shown}) has no {REQUIRED_ROLE}: add the "
                f"WindowsDefenderATP delegated permission {REQUIRED_ROLE} to the app registration, grant admin "
                "consent, and sign in again.")
            return _connectivity_failure("Permission check failed", missing, checks)
        checks["permission"] = True
        return self._probe_api(
            checks, deadline, failed=f"Signed in as {user} (scp: {shown}), but the API call failed",
            succeeded=f"Connectivity OK: signed in as {user} (delegated, scp: {shown}) at {endpoints.login_url}, "
                      f"and {endpoints.api_url} answered.")

    def _managed_identity_connectivity(self, claims: dict[str, Any], checks: dict[str, Any],
                                       deadline: float) -> ActionResult:
        """test_connectivity for the host's managed identity: which identity (client and object id, from
        the token), whether its token has Ip.Read.All (if not, the command that grants it)."""
        from connector.managed_identity import missing_role_error, who

        endpoints = self.settings.endpoints
        if REQUIRED_ROLE not in checks["token_roles"]:
            return _connectivity_failure("Permission check failed", missing_role_error(claims, self.settings), checks)
        checks["permission"] = True
        return self._probe_api(
            checks, deadline, failed=f"Signed in as the {who(claims)}, but the API call failed",
            succeeded=f"Connectivity OK: signed in as the {who(claims)}, token has {REQUIRED_ROLE}, and "
                      f"{endpoints.api_url} answered.")

    def _probe_api(self, checks: dict[str, Any], deadline: float, *, failed: str, succeeded: str) -> ActionResult:
        """The last check of either mode: one harmless lookup proves the API answers."""
        try:
            self.client.ip_stats(CONNECTIVITY_PROBE_IP, 1, deadline)
        except ConnectorError as exc:
            return _connectivity_failure(failed, exc, checks)
        checks["api"] = True
        return ActionResult.model_construct(action=TEST_CONNECTIVITY, status="success", message=succeeded,
                                            parameters={}, data=[checks],
                                            summary={"sign_in": True, "permission": True, "api": True})


def _connectivity_failure(stage: str, exc: ConnectorError, checks: dict[str, Any]) -> ActionResult:
    result = ActionResult.failure(TEST_CONNECTIVITY, {}, exc)
    return result.replace(message=f"{stage}: {exc.message}", data=[checks],
                          summary={k: checks[k] for k in ("sign_in", "permission", "api")})


_JUDGED_BY_PARSERS = frozenset({"ip", "lookback_hours", "lane"})
"""get_ip_statistics' inputs that inputs.py judges itself, item by item, more strictly than the schema."""


def lane_only(lane: Lane | None) -> dict[str, Any]:
    """The summary's lane for a result that never reached the rate gate (none when the lane was refused)."""
    return {} if lane is None else {"lane": lane}


def lane_summary(admission: Admission) -> dict[str, Any]:
    """What a lookup's summary says of its lane: which, and how long it waited for a slot (seconds,
    only when it did)."""
    if admission.waited_s > 0:
        return {"lane": admission.lane, "lane_wait_s": round(admission.waited_s, 3)}
    return {"lane": admission.lane}


def parse_get_ip_statistics(
        params: Mapping[str, Any]) -> tuple[list[ParsedItem], int | InvalidInputError, Lane | None]:
    """The items, look-back and lane of a get_ip_statistics call, checked against manifest.json's schema.

    The item parser decides each address, so one bad address fails alone while a bad look-back or lane
    fails every item (the lane is then None, and the second value says why). The schema decides the
    rest of the document's shape; a document holding nothing but the parsers' own fields (every usual
    call) has no rest, and compiles no schema.
    """
    document = dict(params)
    hours: int | InvalidInputError
    problems = []
    if not _JUDGED_BY_PARSERS.issuperset(document):
        for error in input_validator(GET_IP_STATISTICS).iter_errors(document):
            if error.absolute_path and error.absolute_path[0] in _JUDGED_BY_PARSERS:
                continue  # judged below, per item and with a precise message
            problems.append(error)
    lane: Lane | None
    try:
        lane = parse_lane(document.get("lane"))
    except InvalidInputError as exc:
        lane = None
        lane_error = exc
    if "ip" not in document:
        missing = InvalidInputError("The ip parameter is required.", code="MissingRequiredParameter")
        return [ParsedItem("", None, missing)], DEFAULT_LOOKBACK_HOURS, lane
    try:
        hours = parse_lookback_hours(document.get("lookback_hours"))
    except InvalidInputError as exc:
        hours = exc
    if lane is None and isinstance(hours, int):
        hours = lane_error
    if problems:
        unknown = ", ".join(sorted(show(k) for k in document if k not in _JUDGED_BY_PARSERS))
        hours = InvalidInputError(
            f"Unknown parameter(s) {unknown}: get_ip_statistics takes ip, lookback_hours and lane." if unknown
            else f"Invalid parameters: {problems[0].message[:200]}", code="InvalidInput")
    return parse_ip_items(document["ip"]), hours, lane


def run(
    action: str,
    params: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    store: StateStore | None = None,
    state_dir: Path | None = None,
    shared_store: StateStore | None = None,
    gate: RateGate | None = None,
    installation_key: bytes | None = None,
    progress: Progress | None = None,
    words: Words | None = None,
) -> list[ActionResult]:
    """Run one action: the entry point every platform adapter calls.

    ``words`` is the platform's table of its own names for what a person does there (connector.wording):
    every message of the results names that platform's commands, never another's.

    ``store`` is where the platform keeps the MSAL token cache (its own encrypted state, say);
    ``state_dir`` is where the shared local state lives (SQLite by default). A platform that runs each
    action in a fresh container, where no local file outlives the run, passes its own ``shared_store``
    (result cache, locks) and ``gate`` (the rate-limit ledger) instead, and, for delegated access, the
    ``installation_key`` its token cache is encrypted under (32 random bytes the platform keeps; without
    it the key is a file in ``state_dir``). Never raises for input, configuration or service problems:
    they come back as failed results.
    """
    results = _run(action, params, config, store=store, state_dir=state_dir, shared_store=shared_store, gate=gate,
                   installation_key=installation_key, progress=progress, words=words)
    return [speak_result(result, words) for result in results]


def _run(action: str, params: Mapping[str, Any], config: Mapping[str, Any], *, store: StateStore | None,
         state_dir: Path | None, shared_store: StateStore | None, gate: RateGate | None,
         installation_key: bytes | None, progress: Progress | None, words: Words | None) -> list[ActionResult]:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    try:
        settings = Settings.load(config)
        connector = Connector(settings, state_dir=state_dir, token_store=store, shared_store=shared_store, gate=gate,
                              installation_key=installation_key, words=words)
    except ConnectorError as exc:  # bad configuration, or shared state that cannot be opened
        return failure_for_every_item(action, params, exc)
    with connector:
        if action == TEST_CONNECTIVITY:
            return [connector.test_connectivity()]
        if action == START_SIGN_IN:
            return [start_sign_in(connector.tokens, time.monotonic() + settings.item_budget_s)]
        if action == COMPLETE_SIGN_IN:
            return [complete_sign_in(connector.tokens, params)]
        if action == SIGN_OUT:
            return [sign_out(connector.tokens)]
        return connector.get_ip_statistics(params, progress)


def failure_for_every_item(action: str, params: Mapping[str, Any], exc: ConnectorError) -> list[ActionResult]:
    """A problem before any lookup fails every item, but each still gets its own result (and an
    invalid item keeps its own, more precise, verdict)."""
    if action in (TEST_CONNECTIVITY, *SIGN_IN_ACTIONS):
        return [ActionResult.failure(action, {}, exc)]
    items, hours, lane = parse_get_ip_statistics(params)
    results = []
    for item in items:
        parameters = {"ip": item.ip or item.raw, "lookback_hours": hours if isinstance(hours, int) else None}
        error: ConnectorError = item.error or (hours if isinstance(hours, InvalidInputError) else exc)
        results.append(ActionResult.failure(action, parameters, error, {**scope_summary(item.ip), **lane_only(lane)}))
    return results
