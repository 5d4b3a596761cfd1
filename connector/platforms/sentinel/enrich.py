"""One call of the Function, without the Functions SDK: a body in, a status and a JSON document out.

    {"results": [standard result objects], "comment_html": "...", "incident_tags": ["mde-not-seen", ...]}

The addresses of one incident are looked up in **one** get_ip_statistics run (one rate gate, one
token, one result cache for the batch), within a total wait budget so that the playbook's HTTP call is
answered before Logic Apps gives up on it. ``incident_tags`` are the tags the playbook adds, judged here
from the verdicts so that the playbook needs no logic of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from connector.actions import GET_IP_STATISTICS, failure_for_every_item, run
from connector.errors import ConnectorError
from connector.inputs import DEFAULT_LOOKBACK_HOURS, parse_lookback_hours
from connector.platforms.sentinel.appsettings import PER_INSTANCE_NOTE, FunctionConfig, function_config
from connector.platforms.sentinel.comment import incident_tags, render_comment
from connector.platforms.sentinel.request import BadRequest, Lookup, parse_body
from connector.results import ActionResult
from connector.settings import Settings

log = logging.getLogger("connector.platforms.sentinel")

PER_INSTANCE_SUFFIX = " [rate limit counted per instance: SQLite state; see docs/sentinel.md]"


_NO_SIGN_IN_HERE = ("use auth_mode managed_identity (the Function App's own identity): a Function cannot show a person "
                    "a device-code sign-in")

WORDS = {
    "platform": "Microsoft Sentinel",
    "sign_in": _NO_SIGN_IN_HERE,
    "start_sign_in": _NO_SIGN_IN_HERE,
    "complete_sign_in": _NO_SIGN_IN_HERE,
    "configuration": "the Function App's application settings (MDE_<FIELD>)",
}
"""The Function's words for what a person does (connector.wording): a Function has no sign-in steps."""


def handle(body: bytes, environ: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON document) for one POST body; 400 only when the body is not one of the shapes."""
    started = time.monotonic()
    try:
        lookup = parse_body(body)
    except BadRequest as exc:
        return 400, {"error": str(exc)}
    setup = function_config(environ)
    results = lookups(lookup, setup) if lookup.items else []
    per_instance = setup.per_instance and bool(results)
    comment = render_comment(results, _hours(lookup), [PER_INSTANCE_NOTE] if per_instance else [])
    if per_instance:  # every result says so (the comment says it once)
        results = [r.replace(message=r.message + PER_INSTANCE_SUFFIX) for r in results]
    failed = [r for r in results if not r.succeeded]
    log.info("ipstats: %d address(es), %d failed (%s) in %.0f ms", len(results), len(failed),
             ", ".join(sorted({r.error.category.value for r in failed if r.error})) or "none",
             (time.monotonic() - started) * 1000)
    return 200, {"results": [r.to_dict() for r in results], "comment_html": comment,
                 "incident_tags": incident_tags(results)}


def lookups(lookup: Lookup, setup: FunctionConfig) -> list[ActionResult]:
    """The core's one run for every address, its rate-limit waits bounded by the call's budget."""
    params: dict[str, Any] = {"ip": lookup.items}
    if lookup.lookback_hours is not None:
        params["lookback_hours"] = lookup.lookback_hours
    if lookup.lane is not None:
        params["lane"] = lookup.lane
    if setup.problem is not None:
        return failure_for_every_item(GET_IP_STATISTICS, params, setup.problem)
    gate = None
    try:
        from connector.ratelimit import open_rate_gate
        from connector.waitbudget import WaitBudget

        settings = Settings.load(setup.config)
        gate = WaitBudget(open_rate_gate(settings, setup.state_dir), setup.max_wait_s,
                          budget="this call's wait budget (IPSTATS_MAX_WAIT_S)",
                          advice="or let the playbook run again later")
    except ConnectorError:
        pass  # run() answers a configuration or store problem with a failed result per address
    return run(GET_IP_STATISTICS, params, setup.config, state_dir=setup.state_dir, gate=gate, words=WORDS)


def _hours(lookup: Lookup) -> int | None:
    try:
        return parse_lookback_hours(lookup.lookback_hours) if lookup.lookback_hours is not None \
            else DEFAULT_LOOKBACK_HOURS
    except ConnectorError:
        return None
