"""``| mdeipstats field=<field> [lookback_hours=720] [account=NAME] [max_wait_s=30] [prefix=mde_] [lane=bulk]``

A splunklib StreamingCommand on protocol v2 (chunked). ``distributed=False`` keeps it on the search head
(splunklib then declares it "stateful" to splunkd): indexers have neither the account's secret nor the
shared state. The first chunk opens one core Connector for the whole search (one sign-in, one rate
gate, one result cache); every chunk is enriched in order and passed on whole.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from splunklib.searchcommands import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
    Configuration,
    Option,
    StreamingCommand,
    dispatch,
    validators,
)

from connector import Connector, Settings
from connector.errors import ConnectorError
from connector.lanes import LANES, Lane
from connector.ratelimit import open_rate_gate

from . import APP_NAME, REST_ROOT
from .budget import SearchWaitBudget
from .enrich import Enricher, failed_row, tag_all
from .splunkd import SplunkdConfigReader

STATE_DIR_ENV = "MDE_IPSTATS_STATE_DIR"
LOG_DIR_ENV = "MDE_IPSTATS_LOG_DIR"
LOG_FILE = f"{REST_ROOT}_mdeipstats.log"
HTTP_ALLOWANCE_CALLS = 2
"""Each lookup's item_budget_s = what is left of max_wait_s + this many request timeouts: waits are
bounded by the search's budget, the requests themselves by the core's timeout."""

SCHEDULED_SID = re.compile(r"^(rt_)?scheduler__")
"""A scheduled search's id, as Splunk names its dispatch directory (Search Manual, "Dispatch directory and
search artifacts": scheduler__<user>__<app>__..., rt_scheduler__... for a real-time one). The search info
splunkd hands a command has no other sign of who started the search."""

log = logging.getLogger("ta_mde_ipstats")


def search_lane(option: str | None, sid: str | None) -> tuple[Lane, str | None]:
    """The lane of a search's lookups, and a note when the search's own lane= was overruled.

    A search enriches many events: bulk, capped so that playbooks sharing the app registration keep
    flowing. An analyst's ad-hoc search may say lane=interactive (or automation); a scheduled search is
    bulk whatever it says, since nobody waits on it and a saved search copied from an ad-hoc one would
    otherwise spend the reserve kept for people."""
    if SCHEDULED_SID.match(sid or ""):
        if option not in (None, "bulk"):
            return "bulk", f"lane={option} is ignored: a scheduled search runs in the bulk lane (nobody waits on it)."
        return "bulk", None
    return next((lane for lane in LANES if lane == option), "bulk"), None


def splunk_home() -> Path | None:
    home = os.environ.get("SPLUNK_HOME")
    return Path(home) if home else None


def state_dir() -> Path:
    """Shared by every search on this search head: token cache, rate-limit ledger, result cache."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    home = splunk_home()
    if home is None:
        raise ConnectorError(f"SPLUNK_HOME is not set, so {APP_NAME} has no state directory (set {STATE_DIR_ENV}).")
    return home / "var" / "lib" / "splunk" / APP_NAME / "state"


def log_dir() -> Path | None:
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override)
    home = splunk_home()
    return home / "var" / "log" / "splunk" if home else None


def configure_logging(level: str) -> None:
    """The add-on's own log file (index=_internal source=*ta_mde_ipstats_mdeipstats.log), at the
    Logging tab's level, for this module's and the core's loggers."""
    folder = log_dir()
    handler: logging.Handler
    if folder is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(folder / LOG_FILE, maxBytes=10_000_000, backupCount=3,
                                                       encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s pid=%(process)d %(name)s - %(message)s"))
    for name in ("ta_mde_ipstats", "connector"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(getattr(logging, level, logging.INFO))
        logger.propagate = False


_NO_SIGN_IN_HERE = ("use auth_mode application for the add-on's account: a search cannot show a person a "
                    "device-code sign-in")

WORDS = {
    "platform": "Splunk",
    "sign_in": _NO_SIGN_IN_HERE,
    "start_sign_in": _NO_SIGN_IN_HERE,
    "complete_sign_in": _NO_SIGN_IN_HERE,
    "configuration": "the add-on's Configuration page (Account and Advanced tabs)",
}
"""The add-on's words for what a person does (connector.wording): a search has no sign-in steps."""


class _Search:
    """One search's enrichment: a connector opened once, its memo, its wait budget."""

    def __init__(self, command: MdeIpStatsCommand) -> None:
        self.prefix = command.prefix
        self.enricher: Enricher | None = None
        self.failure: str | None = None
        self._connector: Connector | None = None
        try:
            self._open(command)
        except ConnectorError as exc:
            self._fail(command, exc.message)
        except Exception as exc:  # splunkd unreachable, say: still no event may be dropped
            self._fail(command, f"{APP_NAME} could not read its configuration from splunkd ({type(exc).__name__}).")

    def _fail(self, command: MdeIpStatsCommand, message: str) -> None:
        self.failure = message
        log.error("mdeipstats cannot run: %s", message)
        command.write_warning(message)

    def _open(self, command: MdeIpStatsCommand) -> None:
        addon = SplunkdConfigReader(command.service).read(command.account)
        configure_logging(addon.log_level)
        max_wait_s = float(command.max_wait_s)
        config = dict(addon.config)
        timeout_s = float(config.get("timeout_s") or 30.0)
        config["item_budget_s"] = min(3600.0, max_wait_s + HTTP_ALLOWANCE_CALLS * timeout_s)
        settings = Settings.load(config)
        where = state_dir()
        self.wait_budget = SearchWaitBudget(open_rate_gate(settings, where), max_wait_s)
        self._connector = Connector(settings, state_dir=where, gate=self.wait_budget, words=WORDS)
        hours = int(command.lookback_hours)
        lane, overruled = search_lane(command.lane, command.metadata.searchinfo.sid)
        if overruled:
            command.write_warning(overruled)
        connector = self._connector

        def lookup(ip: str) -> Any:
            # The core reads item_budget_s when a lookup starts: give it what the search has left.
            budget_s = min(3600.0, self.wait_budget.left_s + HTTP_ALLOWANCE_CALLS * timeout_s)
            connector.settings = connector.settings.replace(item_budget_s=budget_s)
            return connector.get_ip_statistics({"ip": ip, "lookback_hours": hours, "lane": lane})[0]

        self.enricher = Enricher(command.field, lookup, self.prefix)
        log.info("search %s: account %s, field %s, lookback_hours %d, max_wait_s %g, lane %s",
                 command.metadata.searchinfo.sid, addon.account, command.field, hours, max_wait_s, lane)

    def enrich(self, records: Iterator[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
        if self.enricher is None:
            return tag_all(records, failed_row("configuration", self.failure or "not configured"), self.prefix)
        return self.enricher.enrich(records)

    def close(self) -> None:
        if self._connector is not None:
            self._connector.close()
            self._connector = None
        if self.enricher is not None:
            log.info("search done: %d distinct addresses, %d lookups, wait budget left %.1f s",
                     len(self.enricher.memo), self.enricher.lookups, self.wait_budget.left_s)


@Configuration(distributed=False)
class MdeIpStatsCommand(StreamingCommand):  # type: ignore[misc,unused-ignore]
    """Adds Defender for Endpoint's organization statistics of the IP in ``field`` to each event.

    ##Syntax
    mdeipstats field=<field> [lookback_hours=<int>] [account=<name>] [max_wait_s=<number>] [prefix=<string>]
    [lane=<bulk|automation|interactive>]

    ##Description
    For each event, how many of the organization's devices communicated with the IP address in ``field``
    in the last ``lookback_hours`` (1 to 720), and when first and last: fields mde_prevalence,
    mde_first_seen, mde_last_seen, mde_seen_in_org, mde_verdict, mde_ip_scope, mde_new_in_window,
    mde_status, mde_error, mde_retry_after_s. The lookups run in the bulk lane of the rate limit Defender
    gives the app registration (capped, so playbooks sharing it keep flowing); an ad-hoc search an analyst
    waits on may say ``lane=interactive``. A scheduled search is always bulk.
    """

    field = Option(doc="The field holding one IP address per event", require=True, validate=validators.Fieldname())
    lookback_hours = Option(doc="Look-back window in hours, 1 to 720 (30 days)", require=False, default=720,
                            validate=validators.Integer(1, 720))
    account = Option(doc="The account (Configuration > Accounts) to use; optional when there is one",
                     require=False, default=None, validate=validators.Match("account", r"^[A-Za-z]\w{0,99}$"))
    max_wait_s = Option(doc="Most seconds the whole search may wait for the API's rate limit", require=False,
                        default=30.0, validate=validators.Float(0, 3600))
    prefix = Option(doc="Prefix of the output fields", require=False, default="mde_",
                    validate=validators.Match("prefix", r"^[A-Za-z_][A-Za-z0-9_]{0,31}$"))

    lane = Option(doc="Share of the rate limit: bulk (the default), automation, or interactive (an analyst "
                      "waiting on an ad-hoc search); a scheduled search is always bulk",
                  require=False, default=None, validate=validators.Set(*LANES))

    _search: _Search | None = None

    def stream(self, records: Iterator[MutableMapping[str, Any]]) -> Iterator[MutableMapping[str, Any]]:
        return stream(self, records)


def stream(command: MdeIpStatsCommand, records: Iterator[MutableMapping[str, Any]]
           ) -> Iterator[MutableMapping[str, Any]]:
    """The command's streaming logic, with the signature UCC's generated wrappers call (bin/mdeipstats_stream.py):
    one _Search per search process, closed when the process ends."""
    if command._search is None:
        command._search = _Search(command)
        atexit.register(command._search.close)
    yield from command._search.enrich(records)


def main() -> None:
    dispatch(MdeIpStatsCommand, sys.argv, sys.stdin, sys.stdout)
