"""MDE IP Statistics: the Cortex XSOAR integration over the mde-ipstats core.

A thin adapter, like the Splunk SOAR app: it turns the instance parameters into the core's
configuration (names are manifest.json's), calls ``connector.run`` once per command, and renders each
IP's standard result as XSOAR entries. The core (sign-in, validation, retries, the result cache) is
installed in the integration's docker image; this file is the only code unified into the YAML.

XSOAR runs every command in a fresh container, so nothing on local disk outlives a run. What must
(the MSAL token cache, the result cache, the rate-limit ledger and 429 pause) lives in the instance's
integration context, written with XSOAR's versioned update: read the context with its version, change
it, write it back naming that version; the server refuses a write whose version is stale and the change
is redone on the fresh context. With ``store_backend: redis`` the core keeps all of it in Redis instead.

Everything is in this one file because XSOAR executes one script per integration; and there is no
``from __future__`` import, because the unified script gets lines put before this docstring.
"""

import base64
import json
import math
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import demistomock as demisto  # type: ignore[import-not-found]
from CommonServerPython import (  # type: ignore[import-not-found]
    CommandResults,
    Common,
    DBotScoreReliability,
    DBotScoreType,
    EntryType,
    get_integration_context,
    handle_proxy,
    return_error,
    return_results,
    set_integration_context,
    tableToMarkdown,
)

import connector
from connector.errors import ConfigurationError, UnavailableError
from connector.lanes import AUTOMATION, DEFAULT_LANE, Lane, lane_code
from connector.manifest import load_manifest
from connector.ratelimit import Budget, gate_id, nth_newest_of, wait_ms, wait_or_refuse
from connector.redaction import redact
from connector.settings import Settings

INTEGRATION_NAME = "MDE IP Statistics"
OUTPUT_PREFIX = "MDE.IPStatistics"
LEGACY_PREFIX = "MicrosoftATP.IPStatistics"
"""The official Microsoft Defender for Endpoint integration's path, written when official_context_paths is on."""

CONTEXT_STORE = "integration_context"
"""store_backend value meaning: shared state in the integration context (the default)."""

CREDENTIAL_PARAMS = {
    "client_secret": ("credentials", "password"),
    "private_key": ("creds_certificate", "password"),
    "thumbprint": ("creds_certificate", "identifier"),
    "store_url": ("store_url", "password"),
}
"""Core fields that XSOAR keeps in a credentials (type 9) parameter: field -> (parameter, part)."""

XSOAR_ONLY_PARAMS = ("proxy", "integrationReliability", "official_context_paths", "store_backend")
"""Parameters whose meaning in XSOAR differs from the core field of the same name (or has none)."""

SIGN_IN_COMMANDS = {
    "mde-auth-start": "start_sign_in",
    "mde-auth-complete": "complete_sign_in",
    "mde-auth-test": "test_connectivity",
    "mde-auth-reset": "sign_out",
}
"""Delegated access (auth_mode delegated): XSOAR's conventional command names for the core's device-code
sign-in. The analyst's tokens live in the integration context (encrypted) like the application's."""

WORDS = {
    "platform": "Cortex XSOAR",
    "sign_in": "run !mde-auth-start, open the page it shows and enter the code as the analyst, then run "
               "!mde-auth-complete",
    "start_sign_in": "run !mde-auth-start again",
    "complete_sign_in": "run !mde-auth-complete",
    "configuration": "the integration instance's settings",
}
"""XSOAR's names for what a person does (connector.wording): every result the core returns here says them."""
SIGN_IN_PREFIX = "MDE.SignIn"

_KEY_PREFIX = "mde-ipstats/"
_LOCK_PREFIX = "mde-ipstats-lock/"
_RATE_PREFIX = "mde-ipstats-rate/"
_INSTALLATION_KEY = "mde-ipstats-installation-key"
_RESULT_PREFIX = _KEY_PREFIX + "result:"
MAX_CACHED_RESULTS = 250
"""The most result-cache entries the integration context holds (about 0.7 kB each): XSOAR reads and writes
the whole context on every update, so a burst of lookups must not grow it without bound. Past the cap the
oldest tenth is evicted at once (so eviction, which reads every entry's age, runs once per 25 writes, not
on each); an evicted IP is simply looked up again."""
_PURGED_AT = "mde-ipstats-purged-at"
_PURGE_EVERY_S = 60.0
"""Expired entries are dropped at most once a minute (a purge reads every entry), not on every write."""
_CAS_ATTEMPTS = 200
_LOCK_LEASE_S = 60.0
_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.1

T = TypeVar("T")


# --- the integration context, versioned -----------------------------------------------------------

class VersionedContext:
    """The instance's integration context with XSOAR's optimistic concurrency.

    ``update(change)`` reads the context and its version straight from the database, lets ``change``
    edit a copy (it returns ``(result, changed)``), and writes it back with that version. The server
    raises ValueError when another container wrote in between; the change is then redone on the new
    context, so no concurrent update is ever lost.
    """

    def __init__(self, attempts: int = _CAS_ATTEMPTS) -> None:
        self._attempts = attempts

    def read(self) -> tuple[dict[str, Any], Any]:
        versioned = get_integration_context(sync=True, with_version=True) or {}
        if "context" in versioned or "version" in versioned:
            return dict(versioned.get("context") or {}), versioned.get("version", -1)
        return dict(versioned), -1  # a server without versioned context

    def update(self, change: Callable[[dict[str, Any]], tuple[T, bool]]) -> T:
        for _ in range(self._attempts):
            context, version = self.read()
            result, changed = change(context)
            if not changed:
                return result
            try:
                set_integration_context(context, sync=True, version=version)
            except ValueError:
                time.sleep(random.uniform(0.001, 0.02))
                continue
            return result
        raise UnavailableError(
            f"The integration context kept changing under this command ({self._attempts} writes refused as "
            "stale): too many commands of this instance at once. Retry, or set store_backend to redis.")


def _now_s() -> float:
    return time.time()


def _purge_expired(context: dict[str, Any], now: float) -> None:
    """Drop expired entries and leases, when the last purge is a minute old (readers check expiry anyway)."""
    last = (_json_or_none(context.get(_PURGED_AT)) or {}).get("t")
    if isinstance(last, int | float) and last + _PURGE_EVERY_S > now:
        return
    context[_PURGED_AT] = json.dumps({"t": now})  # a JSON string, like every entry of the context
    for key in [k for k in context if k.startswith((_KEY_PREFIX, _LOCK_PREFIX))]:
        try:
            expires_at = json.loads(context[key]).get("e")
        except (TypeError, ValueError, AttributeError):
            expires_at = 0  # unreadable: drop it
        if expires_at is not None and expires_at <= now:
            del context[key]


def _evict_oldest_results(context: dict[str, Any], cap: int) -> None:
    """Past ``cap`` result-cache entries, keep the ones written last (their "t"): 90 % of the cap."""
    results = [k for k in context if k.startswith(_RESULT_PREFIX)]
    if len(results) <= cap:
        return

    def written(key: str) -> float:
        entry = _json_or_none(context[key]) or {}
        return float(entry.get("t") or 0)

    keep = cap - cap // 10
    for key in sorted(results, key=written)[:len(results) - keep]:
        del context[key]


class IntegrationContextStore:
    """connector.state.StateStore over the integration context: shared by every container of the instance.

    Each key is one context entry (a JSON string: base64 value, expiry, when written), so the entries
    of the token cache and of the result cache are independent and a concurrent write to one never drops
    another. The result cache keeps at most ``max_results`` entries (the oldest are evicted), since XSOAR
    moves the whole context on every read and write. Locks are leases in the context too (owner and
    expiry), taken and released with the same versioned update; a container that dies holding one blocks
    the others for at most the lease.
    """

    def __init__(self, context: VersionedContext, clock: Callable[[], float] = _now_s,
                 max_results: int = MAX_CACHED_RESULTS) -> None:
        self._context = context
        self._clock = clock
        self._max_results = max_results

    def get(self, key: str) -> bytes | None:
        raw = self._context.read()[0].get(_KEY_PREFIX + key)
        if not isinstance(raw, str):
            return None
        try:
            entry = json.loads(raw)
            expires_at = entry.get("e")
            if expires_at is not None and expires_at <= self._clock():
                return None
            return base64.b64decode(entry["v"], validate=True)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        now = self._clock()
        entry = json.dumps({"v": base64.b64encode(value).decode("ascii"),
                            "e": None if ttl_s is None else now + ttl_s, "t": now})

        def change(context: dict[str, Any]) -> tuple[None, bool]:
            _purge_expired(context, now)
            context[_KEY_PREFIX + key] = entry
            _evict_oldest_results(context, self._max_results)
            return None, True

        self._context.update(change)

    def delete(self, key: str) -> None:
        def change(context: dict[str, Any]) -> tuple[None, bool]:
            return None, context.pop(_KEY_PREFIX + key, None) is not None

        self._context.update(change)

    def lock(self, name: str, timeout_s: float) -> AbstractContextManager[bool]:
        return self._lease(name, timeout_s)

    @contextmanager
    def _lease(self, name: str, timeout_s: float) -> Iterator[bool]:
        key, owner = _LOCK_PREFIX + name, uuid.uuid4().hex

        def take(context: dict[str, Any]) -> tuple[bool, bool]:
            now = self._clock()
            holder = _json_or_none(context.get(key))
            if holder and holder.get("e", 0) > now and holder.get("o") != owner:
                return False, False
            context[key] = json.dumps({"o": owner, "e": now + _LOCK_LEASE_S})
            return True, True

        def release(context: dict[str, Any]) -> tuple[None, bool]:
            holder = _json_or_none(context.get(key))
            if holder and holder.get("o") == owner:
                del context[key]
                return None, True
            return None, False

        deadline = time.monotonic() + max(timeout_s, 0.0)
        delay = _POLL_FIRST_S
        acquired = self._context.update(take)
        while not acquired and time.monotonic() < deadline:
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, _POLL_MAX_S)
            acquired = self._context.update(take)
        try:
            yield acquired
        finally:
            if acquired:
                self._context.update(release)


def _json_or_none(raw: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- the rate-limit ledger, in the context ----------------------------------------------------------

class ContextRateGate:
    """connector.ratelimit.RateGate whose sliding-window ledger lives in the integration context.

    The windows and their safety margin are the core's ``Budget``: each admitted call is a timestamp
    (ms) in one context entry, and a call is admitted only if every window, counted up to any time
    (entries stamped later by another container included), still has room for the call's lane
    (connector.lanes: each call is kept as [time, lane code]; a bare time, written before lanes, counts
    as automation). Admission is the same versioned update as every other write, so two containers cannot
    both take the last slot.
    """

    def __init__(self, context: VersionedContext, budget: Budget, gate_id: str,
                 clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self._context = context
        self.budget = budget
        self._windows = budget.rates()
        self._horizon_ms = max(window.interval for window in self._windows)
        self._key = _RATE_PREFIX + gate_id
        self._clock_ms = clock_ms

    def _ledger(self, context: dict[str, Any]) -> tuple[list[tuple[int, int]], int]:
        entry = _json_or_none(context.get(self._key)) or {}
        calls = []
        for call in entry.get("calls", []):
            if isinstance(call, int | float):
                calls.append((int(call), AUTOMATION))
            elif isinstance(call, list) and len(call) == 2 and all(isinstance(part, int) for part in call):
                calls.append((call[0], call[1]))
        return calls, int(entry.get("pause_until", 0) or 0)

    def _store(self, context: dict[str, Any], calls: list[tuple[int, int]], pause_until: int) -> None:
        context[self._key] = json.dumps({"calls": [list(call) for call in calls], "pause_until": pause_until})

    def _try_admit(self, context: dict[str, Any], lane: int) -> tuple[tuple[str, int], bool]:
        """('ok', 0) after stamping a call of lane (a code), or ('paused'|'full', ms to wait) without writing."""
        now = self._clock_ms()
        calls, pause_until = self._ledger(context)
        if pause_until > now:
            return ("paused", pause_until - now), False
        calls = sorted(call for call in calls if call[0] > now - self._horizon_ms)
        wait = wait_ms(self._windows, now, nth_newest_of(calls), lane)
        assert wait is not None, "a zero limit: Settings keeps every limit at 1 or more"
        if wait:
            return ("full", wait), False
        calls.append((now, lane))
        self._store(context, calls, pause_until)
        return ("ok", 0), True

    def acquire(self, deadline: float, lane: Lane = DEFAULT_LANE) -> float:
        code = lane_code(lane)
        slept = 0.0
        while True:
            verdict, wait_ms = self._context.update(lambda context: self._try_admit(context, code))
            if verdict == "ok":
                return slept
            slept += wait_or_refuse(wait_ms / 1000, deadline, self.budget, paused=verdict == "paused", lane=lane)

    def pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        until = self._clock_ms() + math.ceil(seconds * 1000)

        def change(context: dict[str, Any]) -> tuple[None, bool]:
            calls, pause_until = self._ledger(context)
            if until <= pause_until:
                return None, False
            self._store(context, calls, until)
            return None, True

        self._context.update(change)


# --- parameters -> core configuration ------------------------------------------------------------

def core_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """The instance parameters as the core's configuration (manifest.json's field names and types).

    Credentials parameters are unpacked; XSOAR's ``proxy`` checkbox means "use the system proxy": on,
    the proxy of the environment (HTTPS_PROXY) is the core's proxy; off, the proxy variables are
    removed so that nothing is sent through them. TLS verification has no off switch.
    """
    properties = load_manifest()["configuration"]["properties"]
    config: dict[str, Any] = {}
    for name, schema in properties.items():
        if name in CREDENTIAL_PARAMS:
            param, part = CREDENTIAL_PARAMS[name]
            value = (params.get(param) or {}).get(part) if isinstance(params.get(param), dict) else None
        elif name in XSOAR_ONLY_PARAMS:
            continue
        else:
            value = params.get(name)
        value = _typed(value, schema)
        if value is not None:
            config[name] = value
    proxies = handle_proxy(proxy_param_name="proxy", handle_insecure=False)
    if proxies.get("https"):
        config["proxy"] = proxies["https"]
    if (params.get("store_backend") or CONTEXT_STORE) == "redis":
        config["store_backend"] = "redis"
    else:
        config["store_backend"] = "memory"  # unused: the context store and gate are passed in
    return config


def _typed(value: Any, schema: Mapping[str, Any]) -> Any:
    """XSOAR sends every parameter as text (or bool for checkboxes): convert to the manifest's type."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    kinds = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", [])}
    if isinstance(value, str):
        text = value.strip()
        try:
            if "integer" in kinds:
                return int(text)
            if "number" in kinds:
                return float(text)
        except ValueError:
            return value  # the core's validation names the field
        if "boolean" in kinds:
            return text.lower() in ("true", "yes", "1")
    return value


def _checked(value: Any) -> bool:
    """A checkbox parameter: XSOAR sends a bool, but an instance configured through the API may hold text."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


# --- results -> entries -------------------------------------------------------------------------

def _category_help(params: Mapping[str, Any]) -> dict[str, str]:
    """What to do, per error category (manifest.json's words), in XSOAR's terms where they differ."""
    help_by_category = dict(load_manifest().get("error_categories", {}))
    if params.get("auth_mode") == "delegated":
        help_by_category["authentication"] = f"Sign the analyst in (again): {WORDS['sign_in']}."
    return help_by_category


def context_row(data: Mapping[str, Any], result: connector.ActionResult) -> dict[str, Any]:
    """One successful answer as MDE.IPStatistics (XSOAR's PascalCase keys)."""
    return {
        "IPAddress": data.get("ipAddress"),
        "OrganizationPrevalence": data.get("organizationPrevalence"),
        "OrgPrevalence": data.get("orgPrevalence"),
        "OrgFirstSeen": data.get("orgFirstSeen"),
        "OrgLastSeen": data.get("orgLastSeen"),
        "SeenInOrg": data.get("seenInOrg"),
        "LookBackHours": data.get("lookBackHours"),
        "Verdict": data.get("verdict"),
        "IPScope": data.get("ipScope"),
        "NewInWindow": data.get("newInWindow"),
        "Cached": result.cached,
        "CacheAgeSeconds": result.cache_age_s,
        "Warnings": result.warnings or None,  # what the connector's own state went through (docs/reliability.md)
        "Lane": result.summary.get("lane"),  # the share of the rate limit it used (README "Lanes")
        "LaneWaitSeconds": result.summary.get("lane_wait_s"),
    }


def legacy_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """The official integration's shape, so playbooks written for it keep working."""
    return {"IPAddress": data.get("ipAddress"),
            "Statistics": {"OrgPrevalence": data.get("orgPrevalence"), "OrgFirstSeen": data.get("orgFirstSeen"),
                           "OrgLastSeen": data.get("orgLastSeen")}}


def indicator(data: Mapping[str, Any], reliability: str, message: str) -> Any:
    """The standard IP indicator: prevalence facts, and a DBotScore of 0 (prevalence is not reputation)."""
    score = Common.DBotScore(indicator=data["ipAddress"], indicator_type=DBotScoreType.IP,
                             integration_name=INTEGRATION_NAME, score=Common.DBotScore.NONE,
                             reliability=reliability, message=message)
    return Common.IP(ip=data["ipAddress"], dbot_score=score,
                     organization_prevalence=data.get("organizationPrevalence"),
                     organization_first_seen=data.get("orgFirstSeen"),
                     organization_last_seen=data.get("orgLastSeen"))


def table_row(result: connector.ActionResult) -> dict[str, Any]:
    """One row of the readable table, for every input IP, failed ones included."""
    data = result.data[0] if result.data else {}
    error = result.error
    return {
        "IP": data.get("ipAddress") or result.parameters.get("ip"),
        "Verdict": data.get("verdict") if data else f"error: {error.category.value}" if error else "error",
        "Scope": data.get("ipScope") or result.summary.get("ip_scope"),
        "Devices": data.get("organizationPrevalence"),
        "First seen": data.get("orgFirstSeen"),
        "Last seen": data.get("orgLastSeen"),
        "Look-back (h)": data.get("lookBackHours") or result.parameters.get("lookback_hours"),
        "Cached": result.cached if data else None,
    }


TABLE_HEADERS = ["IP", "Verdict", "Scope", "Devices", "First seen", "Last seen", "Look-back (h)", "Cached"]


def error_entry(result: connector.ActionResult, help_by_category: Mapping[str, str],
                subject: str | None = None) -> CommandResults:
    """A failure: an error entry naming the IP (or the command), the category and what to do."""
    what = subject or f"lookup of {result.parameters.get('ip') or '(no IP given)'}"
    error = result.error
    category = error.category.value if error else "unexpected_response"
    lines = [f"### {INTEGRATION_NAME}: {what} failed ({category})", result.message]
    if error and error.retry_after_s is not None:
        lines.append(f"Retry after {error.retry_after_s:g} s.")
    if help_by_category.get(category):
        lines.append(f"What to do: {help_by_category[category]}")
    if error and error.correlation_id:
        lines.append(f"Correlation id: {error.correlation_id}")
    return CommandResults(readable_output="\n\n".join(lines), entry_type=EntryType.ERROR,
                          raw_response=result.to_dict())


def ip_statistics_entries(results: list[connector.ActionResult], params: Mapping[str, Any]) -> list[Any]:
    """One note entry (the table of every IP, and the context of the answered ones), then one error
    entry per failed IP."""
    reliability = params.get("integrationReliability") or DBotScoreReliability.B
    rows, extra_context = [], {}
    indicator_contexts: dict[str, list[Any]] = {}
    for result in results:
        if not result.succeeded or not result.data:
            continue
        data = result.data[0]
        rows.append(context_row(data, result))
        for key, value in indicator(data, reliability, result.message).to_context().items():
            indicator_contexts.setdefault(key, []).append(value)
    if _checked(params.get("official_context_paths")) and rows:
        extra_context[f"{LEGACY_PREFIX}(val.IPAddress && val.IPAddress == obj.IPAddress)"] = [
            legacy_row(r.data[0]) for r in results if r.succeeded and r.data]
    failed = [r for r in results if not r.succeeded]
    title = (f"{INTEGRATION_NAME}: {len(results)} IP address(es), {len(results) - len(failed)} answered, "
             f"{len(failed)} failed")
    table = tableToMarkdown(title, [table_row(r) for r in results], headers=TABLE_HEADERS)
    warnings = dict.fromkeys(w for r in results for w in r.warnings)  # said once, in order
    if warnings:
        table += "\n**Warnings**\n" + "".join(f"- {w}\n" for w in warnings)
    summary = CommandResults(outputs_prefix=OUTPUT_PREFIX, outputs_key_field="IPAddress",
                             outputs=rows or None, readable_output=table,
                             raw_response=[r.to_dict() for r in results])
    entry = summary.to_context()
    entry_context = entry.get("EntryContext") or {}
    for key, values in {**indicator_contexts, **extra_context}.items():
        entry_context[key] = values
    entry["EntryContext"] = entry_context
    help_by_category = _category_help(params)
    return [entry] + [error_entry(r, help_by_category).to_context() for r in failed]


# --- commands -------------------------------------------------------------------------------------

def installation_key(context: VersionedContext) -> bytes:
    """Delegated access's token-cache key (32 random bytes), kept in the integration context: a fresh
    container keeps no file, and a key lost with each container would sign the analyst out at every
    command. Created once, atomically (two first commands at once agree on one key)."""
    fresh = base64.b64encode(os.urandom(32)).decode("ascii")

    def take(values: dict[str, Any]) -> tuple[str, bool]:
        existing = values.get(_INSTALLATION_KEY)
        if isinstance(existing, str) and len(base64.b64decode(existing)) == 32:
            return existing, False
        values[_INSTALLATION_KEY] = fresh
        return fresh, True

    return base64.b64decode(context.update(take))


def shared_state(config: Mapping[str, Any]) -> dict[str, Any]:
    """The store and gate connector.run needs in a fresh container: the integration context's, unless
    store_backend is redis (the core then keeps tokens, cache and ledger in Redis itself). With delegated
    access, the token cache's key comes from the integration context too: nothing local outlives a
    command."""
    state_dir = Path(tempfile.gettempdir()) / "mde-ipstats-xsoar"
    context = VersionedContext()
    key = {"installation_key": installation_key(context)} if config.get("auth_mode") == "delegated" else {}
    if config.get("store_backend") == "redis":
        return {"state_dir": state_dir, **key}
    store = IntegrationContextStore(context)
    try:
        settings = Settings.load(config)
        budget = Budget.from_settings(settings)
    except ConfigurationError:
        budget = Budget()  # run() reports the configuration error for every item before any call
    gate = ContextRateGate(context, budget, gate_id(str(config.get("tenant_id", "")),
                                                    str(config.get("client_id", ""))))
    return {"store": store, "shared_store": store, "gate": gate, "state_dir": state_dir, **key}


DELEGATED_TEST_MODULE = ("Please enable the integration and run `!mde-auth-start` and `!mde-auth-complete` to log "
                         "in. You can validate the connection by running `!mde-auth-test`\n"
                         "For more details press the (?) button.")
"""test-module's answer with delegated access, in the words of the Microsoft integrations (MicrosoftApiModule's
device-code flow): the instance's Test button cannot sign a person in, so it says which commands do."""


def test_module(config: Mapping[str, Any]) -> str:
    """'ok' when sign-in, the permission and one API call work; otherwise the core's message. With delegated
    access, the commands that sign the analyst in and test the connection."""
    if config.get("auth_mode") == "delegated":
        return DELEGATED_TEST_MODULE
    [result] = connector.run("test_connectivity", {}, config, words=WORDS, **shared_state(config))
    return "ok" if result.succeeded else result.message


def lane_of_caller(calling_context: Any) -> Lane:
    """The lane of a command the arguments do not give one: who ran it, as far as XSOAR says.

    XSOAR documents no "run by a playbook" flag. What it does hand a command is ``demisto.callingContext``:
    a playbook task's entry carries ``context.ParentEntry.entryTask`` (playbookName, taskId, taskName, as
    Cortex XDR's XQL integration reads them), and a command an analyst typed in the War Room has a
    ParentEntry with the user and no task. So: a task is automation, a person's entry interactive, and
    anything else (a script's executeCommand, an older server, a shape we do not know) automation, the
    lane that cannot spend the reserve kept for people. Never an error: these keys are undocumented."""
    try:
        parent = (calling_context.get("context") or {}).get("ParentEntry") or {}
        task = parent.get("entryTask") or {}
        if task.get("taskId") or task.get("playbookName"):
            return "automation"
        if parent.get("user") and not parent.get("polling"):
            return "interactive"
    except AttributeError:  # a key holding something other than an object
        pass
    return DEFAULT_LANE


def get_ip_statistics(config: Mapping[str, Any], args: Mapping[str, Any],
                      params: Mapping[str, Any]) -> list[Any]:
    core_params: dict[str, Any] = {"ip": args.get("ip") if args.get("ip") is not None else ""}
    if args.get("lookback_hours") not in (None, ""):
        hours = args["lookback_hours"]
        core_params["lookback_hours"] = int(hours) if str(hours).strip().isdigit() else hours
    given = args.get("lane") not in (None, "")
    core_params["lane"] = args["lane"] if given else lane_of_caller(getattr(demisto, "callingContext", None) or {})
    results = connector.run("get_ip_statistics", core_params, config, words=WORDS, **shared_state(config))
    return ip_statistics_entries(results, params)


def sign_in_readable(command: str, result: connector.ActionResult) -> str:
    """A sign-in command's answer in the words of the Microsoft integrations (MicrosoftApiModule), plus who
    signed in and, while a sign-in is pending, how long its code lasts."""
    data = result.data[0] if result.data else {}
    state = data.get("state")
    if state == "pending" and data.get("user_code"):
        uri = data.get("verification_uri")
        return ("### Authorization instructions\n"
                f"1. To sign in, use a web browser to open the page [{uri}]({uri})\n"
                f"and enter the code **{data['user_code']}** to authenticate.\n"
                "2. Run the **!mde-auth-complete** command in the War Room.\n\n"
                f"The code expires at {data.get('expires_at')}; `!mde-auth-complete wait_s=60` waits up to a "
                "minute for the sign-in to finish.")
    if command == "mde-auth-complete" and state == "signed_in":
        return f"✅ Authorization completed successfully.\n\n{result.message}"
    if command == "mde-auth-reset":
        return ("Authorization was reset successfully. You can now run **!mde-auth-start** and "
                f"**!mde-auth-complete**.\n\n{result.message}")
    if command == "mde-auth-test" and data.get("sign_in"):
        checks = str(tableToMarkdown("Checks", data, headers=[
            "sign_in", "permission", "api", "login_url", "api_url", "token_audience"]))
        return f"✅ Success!\n\n{result.message}\n\n{checks}"
    return result.message


def sign_in_entries(command: str, results: list[connector.ActionResult], params: Mapping[str, Any]) -> list[Any]:
    """The answer of a sign-in command: what the analyst must do next, in words, and MDE.SignIn."""
    help_by_category = _category_help(params)
    entries = []
    for result in results:
        if not result.succeeded:
            entries.append(error_entry(result, help_by_category, subject=command).to_context())
            continue
        data = result.data[0] if result.data else {}
        state = data.get("state")
        outputs = None
        if state:
            outputs = {"State": state, "User": data.get("user"), "VerificationURI": data.get("verification_uri"),
                       "UserCode": data.get("user_code"), "ExpiresAt": data.get("expires_at")}
        entries.append(CommandResults(outputs_prefix=SIGN_IN_PREFIX if outputs else None, outputs=outputs,
                                      readable_output=sign_in_readable(command, result),
                                      raw_response=result.to_dict()).to_context())
    return entries


def sign_in(command: str, config: Mapping[str, Any], args: Mapping[str, Any],
            params: Mapping[str, Any]) -> list[Any]:
    core_params: dict[str, Any] = {}
    if command == "mde-auth-complete" and args.get("wait_s") not in (None, ""):
        wait = args["wait_s"]
        core_params["wait_s"] = int(wait) if str(wait).strip().isdigit() else wait
    results = connector.run(SIGN_IN_COMMANDS[command], core_params, config, words=WORDS,
                            **shared_state(config))
    return sign_in_entries(command, results, params)


def main() -> None:
    command = demisto.command()
    params = demisto.params()
    demisto.debug(f"{INTEGRATION_NAME}: command {command}")
    try:
        config = core_config(params)
        if command == "test-module":
            outcome = test_module(config)
            if outcome != "ok":
                return_error(outcome)
                return
            return_results(outcome)
        elif command == "mde-get-ip-statistics":
            for entry in get_ip_statistics(config, demisto.args(), params):
                return_results(entry)  # one by one: a list would batch the plain dict entries after the rest
        elif command in SIGN_IN_COMMANDS:
            for entry in sign_in(command, config, demisto.args(), params):
                return_results(entry)
        else:
            raise NotImplementedError(f"Command {command} is not implemented by {INTEGRATION_NAME}")
    except Exception as exc:  # the core returns failed results; anything raised here is a defect
        return_error(f"Failed to execute {command}: {type(exc).__name__}: {redact(str(exc))}")


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
