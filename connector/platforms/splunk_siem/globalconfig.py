"""globalConfig.json for UCC, generated from manifest.json's configuration: never edited by hand.

UCC turns globalConfig.json into the add-on's configuration UI, its REST handlers and .conf specs. Where a
manifest field lands follows its x-tier: a basic field (what identifies one tenant's application) is on
the Accounts tab (several accounts may exist: one per tenant); an advanced field (overrides, trust,
timeouts, limits, store, cache, thresholds) is on the Advanced tab, shared by every search on the search
head (the search merges it under the chosen account's fields); a testing field is nowhere. A field the
add-on cannot honour is named in NOT_EXPOSED with the reason; a field of any other tier is refused, so a
field added to the core cannot silently go missing from the add-on.

    python -m connector.platforms.splunk_siem.globalconfig          # print
    python -m connector.platforms.splunk_siem.globalconfig --write  # update the committed file
    python -m connector.platforms.splunk_siem.globalconfig --check  # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = HERE.parents[2] / "manifest.json"
GLOBAL_CONFIG = HERE / "globalConfig.json"

ADDON_NAME = "TA-mde-ipstats"
REST_ROOT = "ta_mde_ipstats"
DISPLAY_NAME = "Microsoft Defender for Endpoint IP statistics"

ACCOUNT_TIER = "basic"
"""One tenant's application: what an Accounts row is (secrets encrypted into storage/passwords)."""
ADVANCED_TIER = "advanced"
"""Shared by every search on the search head (the Advanced tab, one stanza)."""
HIDDEN_TIER = "testing"
"""Only the tests set it (they write the Advanced stanza directly): never on a tab."""
NOT_EXPOSED = {
    "item_budget_s": "the command derives it from its max_wait_s argument, per search",
    "proxy": "UCC's Proxy tab replaces it; the command builds the URL from that tab's fields",
    "auth_mode": "a search runs unattended, so it signs in as the application (secret or certificate); "
                 "delegated sign-in needs a person at a device-code prompt",
    "managed_identity_client_id": "a search head signs in as the application: auth_mode is not exposed",
}
MULTILINE = {"private_key", "public_certificate", "ca_bundle"}
"""PEM text is pasted with its line breaks: a textarea, not a one-line text box."""
ADVANCED_TAB = "advanced"


def _types(schema: dict[str, Any]) -> tuple[set[str], dict[str, Any]]:
    """The JSON types a property allows (null dropped) and the branch that carries the details."""
    branches = schema.get("anyOf") or [schema]
    kinds = {b.get("type") for b in branches if b.get("type") not in (None, "null")}
    detail = next((b for b in branches if b.get("type") not in (None, "null")), schema)
    return {str(k) for k in kinds}, {**schema, **detail}


def entity(field: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    """One UCC form entity for one manifest configuration property."""
    kinds, detail = _types(schema)
    secret = bool(schema.get("x-secret"))
    out: dict[str, Any] = {"field": field, "label": schema.get("title") or field,
                           "help": schema.get("description", "")}
    if "enum" in detail:
        out["type"] = "singleSelect"
        out["options"] = {"disableSearch": True,
                          "autoCompleteFields": [{"value": v, "label": v} for v in detail["enum"]]}
    elif field in MULTILINE:
        out["type"] = "textarea"
        out["options"] = {"rowsMin": 3, "rowsMax": 15}
    else:
        out["type"] = "text"
    if kinds & {"number", "integer"}:
        low = detail.get("minimum", detail.get("exclusiveMinimum", 0))
        high = detail.get("maximum", detail.get("exclusiveMaximum", 1_000_000))
        out["validators"] = [{"type": "number", "range": [low, high], "isInteger": "integer" in kinds,
                              "errorMsg": f"{out['label']}: a number from {low} to {high}"}]
    if secret:
        out["encrypted"] = True
    if required:
        out["required"] = True
    default = schema.get("default")
    if default is not None and not secret:
        out["defaultValue"] = default
    return out


def _account_tab(properties: dict[str, Any], required: set[str]) -> dict[str, Any]:
    name = {"field": "name", "label": "Account name", "type": "text", "required": True,
            "help": "The name searches pass as account= (optional when there is only one account).",
            "validators": [{"type": "regex", "pattern": r"^[a-zA-Z]\w*$",
                            "errorMsg": "Begin with a letter; letters, digits and underscores only."},
                           {"type": "string", "minLength": 1, "maxLength": 100,
                            "errorMsg": "From 1 to 100 characters."}]}
    entities = [name] + [entity(f, properties[f], f in required) for f in shown(properties, ACCOUNT_TIER)]
    return {"name": "account", "title": "Accounts", "entity": entities,
            "table": {"actions": ["edit", "delete", "clone"],
                      "header": [{"label": "Account", "field": "name"}, {"label": "Tenant", "field": "tenant_id"},
                                 {"label": "Client", "field": "client_id"}, {"label": "Cloud", "field": "cloud"}]}}


def _advanced_tab(properties: dict[str, Any]) -> dict[str, Any]:
    entities = [entity(f, properties[f], False) for f in shown(properties, ADVANCED_TIER)]
    return {"name": ADVANCED_TAB, "title": "Advanced", "entity": entities}


def shown(properties: dict[str, Any], tier: str) -> list[str]:
    """The fields of one tier the add-on exposes, in manifest order."""
    return [f for f, prop in properties.items() if prop.get("x-tier") == tier and f not in NOT_EXPOSED]


def unclassified(properties: dict[str, Any]) -> list[str]:
    """Fields with no tier the add-on knows (so no place on its tabs)."""
    known = (ACCOUNT_TIER, ADVANCED_TIER, HIDDEN_TIER)
    return sorted(f for f, prop in properties.items() if prop.get("x-tier") not in known)


def generate(manifest: dict[str, Any]) -> dict[str, Any]:
    """globalConfig.json's content for this manifest."""
    configuration = manifest["configuration"]
    properties: dict[str, Any] = configuration["properties"]
    missing = unclassified(properties)
    if missing:
        raise ValueError(f"manifest.json configuration fields {missing} have no x-tier the add-on knows ("
                         f"{ACCOUNT_TIER}, {ADVANCED_TIER}, {HIDDEN_TIER}): say who sets them in connector/settings.py")
    # The application sign-in (the only one here) needs client_id, which the manifest cannot require of
    # every mode (auth_mode managed_identity has none).
    required = set(configuration.get("required", [])) | {"client_id"}
    return {
        "meta": {
            "name": ADDON_NAME,
            "restRoot": REST_ROOT,
            "version": manifest["version"],
            "displayName": DISPLAY_NAME,
            "schemaVersion": "0.0.9",
            "supportedPythonVersion": ["3.13"],
            "supportedThemes": ["light", "dark"],
            "checkForUpdates": False,
        },
        "pages": {
            "configuration": {
                "title": "Configuration",
                "description": "The Defender application (one account per tenant) and what every search shares.",
                "tabs": [
                    _account_tab(properties, required),
                    _advanced_tab(properties),
                    {"type": "proxyTab"},
                    {"type": "loggingTab"},
                ],
            },
        },
        "customSearchCommand": [SEARCH_COMMAND],
    }


SEARCH_COMMAND: dict[str, Any] = {
    "commandName": "mdeipstats",
    "fileName": "mdeipstats_stream.py",
    "commandType": "streaming",
    "requiredSearchAssistant": False,
    "arguments": [
        {"name": "field", "required": True, "validate": {"type": "Fieldname"}},
        {"name": "lookback_hours", "required": False, "defaultValue": 720,
         "validate": {"type": "Integer", "minimum": 1, "maximum": 720}},
        {"name": "account", "required": False},
        {"name": "max_wait_s", "required": False, "defaultValue": 30,
         "validate": {"type": "Float", "minimumValue": 0, "maximumValue": 3600}},
        {"name": "prefix", "required": False, "defaultValue": "mde_"},
    ],
}
"""The search command, declared as UCC declares custom search commands: UCC generates its commands.conf
stanza (python.required from meta.supportedPythonVersion) and a bin/mdeipstats.py wrapper over
bin/mdeipstats_stream.py's stream(). The add-on's own bin/mdeipstats.py replaces that wrapper (package
files overwrite generated ones) to keep the command on the search head (distributed=False; UCC's wrapper
has a plain @Configuration()) and to answer an older Splunk's Python with a clear error; it streams
through the same stream(). requiredSearchAssistant is off because UCC's searchbnf.conf template has no
`category`: the add-on ships default/searchbnf.conf itself."""


def render(manifest: dict[str, Any]) -> str:
    return json.dumps(generate(manifest), indent=4, ensure_ascii=False) + "\n"


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write globalConfig.json")
    group.add_argument("--check", action="store_true", help="exit 1 when globalConfig.json is stale")
    args = parser.parse_args(argv)
    text = render(load_manifest())
    if args.write:
        GLOBAL_CONFIG.write_text(text, encoding="utf-8")
    elif args.check:
        current = GLOBAL_CONFIG.read_text(encoding="utf-8") if GLOBAL_CONFIG.exists() else ""
        if current != text:
            print(f"{GLOBAL_CONFIG} is stale: run python -m connector.platforms.splunk_siem.globalconfig --write",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
