"""The analyzer's Cortex definition (one "flavor" JSON), generated from manifest.json.

    python -m connector.platforms.cortex.flavor           # rewrite MDE_IPStatistics.json beside this file
    python -m connector.platforms.cortex.flavor --check   # exit 1 when the committed file is stale

The items are only what a Cortex administrator sets: manifest.json's basic fields (x-tier "basic": tenant,
client, credential, auth_mode, cloud) and, of the advanced ones, the shared store (STORE_ITEMS: Cortex's
docker runner starts a fresh container per job, so the rate-limit ledger needs Redis), under the same
names. Every other advanced field keeps the core's default (a job input that names one, as the tests'
harness does to reach the emulator, still applies: see mde_ipstatistics.core_config), and no testing field
is an item. `proxy` and `ca_bundle` are never items: Cortex supplies those itself (its `proxy` object and
`cacerts` PEM text, set once per organization) and would overwrite a `proxy` item of ours. Types map to
Cortex's three (string, number, boolean). Cortex's schema has no secret flag, so a secret says so in its
description, and the program blanks every secret field of the manifest when cortexutils echoes a job's
input (see CONFIDENTIAL_NOTE).
Items Cortex needs beyond the manifest (look-back, lane, state directory, taxonomy levels) are declared here,
and the program reads their defaults back from the generated file, so they live in one place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from connector.manifest import fields_of_tier, load_manifest

NAME = "MDE_IPStatistics"
VERSION = "1.0"
"""Cortex's rule: the major for features or a changed report format, the minor for fixes."""
PROGRAM = "mde_ipstatistics.py"
DEFINITION = Path(__file__).with_name(f"{NAME}.json")
TEMPLATES_DIR = f"{NAME}_{VERSION.replace('.', '_')}"
ACTION = "get_ip_statistics"
CORTEX_SUPPLIED = ("proxy", "ca_bundle")
"""Manifest fields filled from Cortex's own settings (config.proxy.https/http and config.cacerts)."""
STORE_ITEMS = ("store_backend", "store_url")
"""The advanced fields a Cortex administrator does set: where the state shared by jobs lives."""
CONFIDENTIAL_NOTE = "Secret: a failed job's echoed input shows it as REMOVED."
DEFAULT_STATE_DIR = "/var/lib/cortex-analyzers/mde-ipstats"
"""FHS's place for state a program keeps between runs: it outlives an upgrade of the analyzers folder
(often read-only to Cortex and replaced wholesale by a git pull or a new archive)."""
DEFAULT_LANE = "interactive"
"""An analyzer job is started by an analyst who waits for its report (TheHive's "Run analyzers"): Cortex's
job input says nothing of who started it (JobRunnerSrv writes data, dataType, tlp, pap, message,
parameters and config), so the lane is the job's parameters.lane, else this item, else interactive. An
organization whose Cortex jobs come from automation sets the item to automation."""
TAXONOMY_LEVELS = ("info", "safe", "suspicious", "malicious")
DEFAULT_TAXONOMY_LEVELS = {"common": "info", "rare": "suspicious", "not_seen": "suspicious"}
"""Prevalence is not reputation: an IP many devices talk to is context (info); one that few or none of
the organization's devices ever reached deserves a look (suspicious). Never safe or malicious."""
SERVICE_HOMEPAGE = "https://learn.microsoft.com/en-us/defender-endpoint/api/get-ip-statistics"
MAX_TLP = 2
"""The IP leaves Cortex for Microsoft's cloud (the tenant's own Defender): TLP:RED stays in house."""
MAX_PAP = 3
"""The lookup reads the organization's own telemetry and never touches the IP: nothing an adversary can
see, so even PAP:RED allows it. The check stays on so an administrator can lower the ceiling."""

_CORTEX_TYPES = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}


def cortex_type(schema: dict[str, Any], where: str) -> str:
    """Cortex's type for a JSON Schema property: its one non-null scalar type (an enum of text is a string)."""
    variants = schema.get("anyOf") or schema.get("oneOf") or [schema]
    kinds = set()
    for variant in variants:
        kind = variant.get("type")
        if kind is None and all(isinstance(v, str) for v in variant.get("enum", [None])):
            kind = "string"
        if kind != "null":
            kinds.add(kind)
    if len(kinds) != 1 or next(iter(kinds)) not in _CORTEX_TYPES:
        raise TypeError(f"{where}: no single Cortex type for {schema!r}")
    return _CORTEX_TYPES[kinds.pop()]


def configuration_item(name: str, schema: dict[str, Any], required: bool, where: str) -> dict[str, Any]:
    description = schema.get("description") or schema.get("title") or name
    enum = schema.get("enum")
    if enum:
        description += f" (one of: {', '.join(str(v) for v in enum)})"
    if schema.get("x-secret"):
        description += f". {CONFIDENTIAL_NOTE}"
    item: dict[str, Any] = {
        "name": name,
        "description": description,
        "type": cortex_type(schema, where),
        "multi": False,
        "required": required,
    }
    if schema.get("default") is not None:
        item["defaultValue"] = schema["default"]
    return item


def cortex_only_items(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """What a Cortex job needs that the core's configuration does not hold."""
    inputs = manifest["actions"][ACTION]["input"]["properties"]
    lane = {**inputs["lane"], "default": DEFAULT_LANE,
            "description": "Share of Defender's rate limit for jobs that do not say (a job's parameters.lane "
                           "wins): interactive, for an analyst waiting on the report, may use a reserve "
                           "playbooks never touch; set automation when jobs come from automation"}
    items = [
        configuration_item("lookback_hours", inputs["lookback_hours"], False, f"actions.{ACTION}.input.lookback_hours"),
        configuration_item("lane", lane, False, f"actions.{ACTION}.input.lane"),
        {"name": "state_dir", "type": "string", "multi": False, "required": False,
         "defaultValue": DEFAULT_STATE_DIR,
         "description": "Directory, writable by the user Cortex runs analyzers as, where the token cache, "
                        "rate-limit ledger and result cache outlive a job (docker runner: use "
                        "store_backend redis instead)"},
    ]
    for verdict, level in DEFAULT_TAXONOMY_LEVELS.items():
        items.append({
            "name": f"taxonomy_level_{verdict}", "type": "string", "multi": False, "required": False,
            "defaultValue": level,
            "description": f"Taxonomy level when the verdict is {verdict} (one of: {', '.join(TAXONOMY_LEVELS)})",
        })
    return items


def generate(manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flavor definition manifest.json implies."""
    manifest = manifest if manifest is not None else dict(load_manifest())
    config = manifest["configuration"]
    required = set(config.get("required", []))
    shown = [name for name in fields_of_tier(config, "basic") if name not in CORTEX_SUPPLIED]
    shown += [name for name in STORE_ITEMS if name in config["properties"]]
    items = [configuration_item(name, config["properties"][name], name in required, f"configuration.{name}")
             for name in shown]
    items.extend(cortex_only_items(manifest))
    return {
        "name": NAME,
        "version": VERSION,
        "author": manifest["publisher"],
        "url": manifest.get("url", SERVICE_HOMEPAGE),
        "license": manifest["license"],
        "description": manifest["description"],
        "dataTypeList": ["ip"],
        "command": f"{NAME}/{PROGRAM}",
        "baseConfig": NAME,
        "config": {
            "service": ACTION,
            "check_tlp": True,
            "max_tlp": MAX_TLP,
            "check_pap": True,
            "max_pap": MAX_PAP,
            "auto_extract": False,
        },
        "configurationItems": items,
        "registration_required": True,
        "subscription_required": True,
        "free_subscription": False,
        "service_homepage": SERVICE_HOMEPAGE,
        "service_logo": {"path": "assets/logo.png", "caption": "logo"},
        "screenshots": [{"path": "assets/long_report.png", "caption": "MDE_IPStatistics: long report template"}],
        "integration_type": "external_api",
    }


def render(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed definition is stale")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        current = DEFINITION.read_text(encoding="utf-8") if DEFINITION.is_file() else ""
        if current != text:
            print(f"{DEFINITION} is stale: run python -m connector.platforms.cortex.flavor", file=sys.stderr)
            return 1
        return 0
    DEFINITION.write_text(text, encoding="utf-8")
    print(DEFINITION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
