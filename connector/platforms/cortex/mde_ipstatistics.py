#!/usr/bin/env python3
"""Cortex analyzer MDE_IPStatistics: Defender for Endpoint organization prevalence of one IP observable.

Cortex runs `mde_ipstatistics.py <job dir>`; cortexutils reads `<job dir>/input/input.json` and this
program answers in `<job dir>/output/output.json`. All the work is the connector core's
`get_ip_statistics`; this file only translates:

- in: the observable (exactly one IP address, refused before any request otherwise), the flavor's
  configuration items (manifest.json's names), Cortex's own `proxy` and `cacerts` settings (the core's
  `proxy` and `ca_bundle`), and a state directory that outlives the job;
- out: the core's result object as the `full` report (plus `analyzer_state`: where the token cache,
  rate-limit ledger and result cache live, and whether other jobs share them), the `MDE:Prevalence`
  taxonomy built in `summary()`, or, when the lookup fails, `success: false` with the core's message
  (plus its category, HTTP status and correlation id, since Cortex keeps only `errorMessage` of a failed
  job); an observable of another data type is `notSupported()`.

Under Cortex's docker job runner every job is a fresh container, so a state directory inside it is
empty at each job: the rate limit would silently start from zero every time. With no Redis configured
the job still answers, but the report says the limit is not shared and what to configure (the long
template shows it), and a warning goes to the job's log.

Defaults of the Cortex-only items come from MDE_IPStatistics.json beside this file (generated from
manifest.json by connector/platforms/cortex/flavor.py), so they are declared once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

# cortexutils is the analyzer's dependency only (not in the core's venv) and ships no type hints.
from cortexutils.analyzer import Analyzer  # type: ignore[import-not-found, import-untyped, unused-ignore]
from cortexutils.worker import DEFAULT_SECRET_PHRASES  # type: ignore[import-not-found, import-untyped, unused-ignore]

import connector
from connector.inputs import parse_ip_items, show
from connector.manifest import load_manifest

DEFINITION = Path(__file__).resolve().with_name("MDE_IPStatistics.json")
ACTION = "get_ip_statistics"
NAMESPACE = "MDE"
PREDICATE = "Prevalence"
NOT_SEEN = "not seen"
TAXONOMY_LEVELS = ("info", "safe", "suspicious", "malicious")
VERDICTS = ("common", "rare", "not_seen")
CORTEX_SUPPLIED = ("proxy", "ca_bundle")
"""Manifest fields taken from Cortex's own settings (config.proxy, config.cacerts), never from an item:
config.proxy is Cortex's object of URLs, not the core's proxy URL."""
ALSO_SECRET = ("proxy",)
"""Cortex's proxy settings are URLs that may carry a user name and password."""
DOCKER_JOB_DIRECTORY = "/job"
"""Where Cortex's docker runner mounts the job (cortexutils' default when no job directory is given)."""
CONTAINER_MARKER = "MDE_IPSTATS_CORTEX_CONTAINER"
"""Set by the analyzer's Dockerfile: this process runs in a container that lives for one job."""
UNSHARED_WARNING = ("This job ran in a fresh container (Cortex's docker runner) without Redis: its token cache, "
                    "rate-limit ledger and result cache lived and died with the container, so the 100 calls a "
                    "minute and 1,500 an hour were not counted across jobs. Set store_backend to redis and "
                    "store_url, or run the analyzer with Cortex's process runner and a state_dir.")


def secret_phrases() -> tuple[str, ...]:
    """What cortexutils blanks in an echoed input: its defaults, every secret field of manifest.json by
    name (`store_url` holds no "key", "secret" or "password"), and the proxy settings."""
    fields = load_manifest()["configuration"]["properties"]
    named = tuple(name.lower() for name, schema in fields.items() if schema.get("x-secret"))
    return tuple(dict.fromkeys((*DEFAULT_SECRET_PHRASES, *named, *ALSO_SECRET)))


def failure_message(error: dict[str, Any]) -> str:
    """The core's message, then what a person quotes to support: category, HTTP status, code, ids."""
    facts = [f"category {error.get('category')}"]
    if error.get("http_status") is not None:
        facts.append(f"HTTP {error['http_status']}")
    if error.get("code"):
        facts.append(f"code {error['code']}")
    if error.get("retry_after_s") is not None:
        facts.append(f"retry after {error['retry_after_s']:g} s")
    if error.get("correlation_id"):
        facts.append(f"correlation id {error['correlation_id']}")
    return f"{error.get('message')} [{'; '.join(facts)}]"


_NO_SIGN_IN_HERE = ("use auth_mode application (or managed_identity on Azure) for this analyzer: a Cortex job cannot "
                    "show a person a device-code sign-in")

WORDS = {
    "platform": "TheHive Cortex",
    "sign_in": _NO_SIGN_IN_HERE,
    "start_sign_in": _NO_SIGN_IN_HERE,
    "complete_sign_in": _NO_SIGN_IN_HERE,
    "configuration": "the analyzer's configuration in Cortex (Organization, Analyzers)",
}
"""Cortex's words for what a person does (connector.wording): an analyzer job has no sign-in steps."""


class MdeIpStatistics(Analyzer):  # type: ignore[misc, unused-ignore]
    """One job: one IP observable looked up through the connector core."""

    def __init__(self, job_directory: str | None = None) -> None:
        super().__init__(job_directory, secret_phrases=secret_phrases())

    @cached_property
    def defaults(self) -> dict[str, Any]:
        """defaultValue of every configuration item of the definition (what Cortex shows when unset)."""
        definition = json.loads(DEFINITION.read_text(encoding="utf-8"))
        return {item["name"]: item.get("defaultValue") for item in definition["configurationItems"]}

    def setting(self, name: str) -> Any:
        value = self.get_param(f"config.{name}")
        return self.defaults.get(name) if value is None or value == "" else value

    def core_config(self) -> dict[str, Any]:
        """The core's configuration: the items that are manifest fields, plus Cortex's proxy and cacerts.
        A manifest field that is no item (an advanced one left at the core's default) still applies when
        the job's config names it: Cortex never sends one, but a job input written by hand (the tests' own
        harness, pointing the analyzer at the emulator) may."""
        fields = load_manifest()["configuration"]["properties"]
        config = {name: self.setting(name) for name in fields if name not in CORTEX_SUPPLIED
                  and (name in self.defaults or self.get_param(f"config.{name}") not in (None, ""))}
        proxy = (self.get_param("config.proxy.https") or self.get_param("config.proxy_https")
                 or self.get_param("config.proxy.http") or self.get_param("config.proxy_http"))
        if proxy:
            config["proxy"] = proxy
        cacerts = self.get_param("config.cacerts")
        if isinstance(cacerts, str) and cacerts.strip():
            config["ca_bundle"] = cacerts
        return {name: value for name, value in config.items() if value is not None and value != ""}

    def observable(self) -> str:
        """The one canonical IP address of the job, or the job fails here, before any request."""
        data = self.get_data()
        items = parse_ip_items(data) if isinstance(data, str) else []
        if len(items) != 1:
            self.error(f"{show(data)} is not one IP address: an ip observable here must be a single IPv4 or "
                       "IPv6 address (no lists, ranges or host names). Nothing was sent to Defender.")
        if items[0].error is not None:
            self.error(f"{items[0].error.message} Nothing was sent to Defender.")
        assert items[0].ip is not None
        return items[0].ip

    def levels(self) -> dict[str, str]:
        levels = {}
        for verdict in VERDICTS:
            name = f"taxonomy_level_{verdict}"
            level = str(self.setting(name)).strip().lower()
            if level not in TAXONOMY_LEVELS:
                self.error(f"{name} {show(level)} is not a taxonomy level: use one of {', '.join(TAXONOMY_LEVELS)}.")
            levels[verdict] = level
        return levels

    def state_dir(self) -> Path:
        path = Path(str(self.setting("state_dir"))).expanduser()
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            self.error(f"The state directory {path} cannot be created ({type(exc).__name__}): create it, owned "
                       "by the user Cortex runs analyzers as, or set state_dir to a writable directory.")
        return path

    def taxonomy(self, full: dict[str, Any], levels: dict[str, str]) -> dict[str, Any]:
        """MDE:Prevalence = the device count, or "not seen"; its level is the verdict's configured one."""
        stats = full["data"][0]
        verdict = stats["verdict"]
        value = str(stats["organizationPrevalence"]) if verdict != "not_seen" else NOT_SEEN
        return dict(self.build_taxonomy(levels[verdict], NAMESPACE, PREDICATE, value))

    def in_fresh_container(self) -> bool:
        """True under Cortex's docker runner: nothing written locally outlives this job."""
        return self.job_directory == DOCKER_JOB_DIRECTORY or bool(os.environ.get(CONTAINER_MARKER))

    def state_scope(self, config: dict[str, Any], state_dir: Path) -> dict[str, Any]:
        """Where the shared state lives, and whether other jobs share it (the report's analyzer_state)."""
        if config.get("store_backend") == "redis":
            return {"shared": True, "store": "redis", "warning": None}
        if config.get("store_backend") == "memory" or self.in_fresh_container():
            logging.getLogger("mde_ipstatistics").warning(UNSHARED_WARNING)
            return {"shared": False, "store": str(config.get("store_backend") or "sqlite"), "warning": UNSHARED_WARNING}
        return {"shared": True, "store": f"sqlite in {state_dir}", "warning": None}

    def run(self) -> None:
        if self.data_type != "ip":
            self.notSupported()  # cortexutils' own answer for a data type the definition does not list
        try:
            full = self.lookup()
        except Exception as exc:  # the core returns failed results; anything raised here is a defect
            self.error(f"Unexpected internal error in the analyzer ({type(exc).__name__}).")
        self.report(full)

    def lookup(self) -> dict[str, Any]:
        """The core's answer for the job's observable; a failed lookup ends the job with its message."""
        ip = self.observable()
        self.levels()  # a wrong level fails the job before any request; summary() applies them
        config = self.core_config()
        state_dir = self.state_dir()
        hours = self.get_param("parameters.lookback_hours") or self.setting("lookback_hours")
        lane = self.get_param("parameters.lane") or self.setting("lane")  # flavor.DEFAULT_LANE says why
        scope = self.state_scope(config, state_dir)
        results = connector.run(ACTION, {"ip": ip, "lookback_hours": hours, "lane": lane}, config,
                                state_dir=state_dir, words=WORDS)
        full: dict[str, Any] = results[0].to_dict()
        error = full["error"] or {"message": full["message"]}
        if full["status"] != "success":
            message = failure_message(error)
            if error.get("category") == "configuration" and re.search(r"\b(proxy|ca_bundle)\b", message):
                message += " (Cortex's proxy and cacerts settings reach the connector as proxy and ca_bundle.)"
            if scope["warning"]:
                message += f" {scope['warning']}"
            self.error(message)
        full["analyzer_state"] = scope
        return full

    def summary(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The taxonomies, built from the report as Cortex-Analyzers' analyzers build theirs: MDE:Prevalence,
        the device count or "not seen", at the level configured for the verdict."""
        return {"taxonomies": [self.taxonomy(raw, self.levels())]}

    def artifacts(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        """None: the report's only observable is the IP the job was run on."""
        return []


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    MdeIpStatistics().run()


if __name__ == "__main__":
    main()
