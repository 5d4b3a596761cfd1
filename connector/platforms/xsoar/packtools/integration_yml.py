"""The integration's YAML (XSOAR's split layout), generated from manifest.json; never edited by hand.

    python connector/platforms/xsoar/packtools/integration_yml.py --write   # regenerate the committed file
    python connector/platforms/xsoar/packtools/integration_yml.py --check   # exit 1 if it is stale

Parameter names are manifest.json's configuration fields, types and defaults come from its JSON
Schema; what XSOAR needs beyond it is presentation (labels, long-text fields) and the platform's own
conventions, kept in the tables below:
- secrets are credentials parameters (type 9): ``credentials`` holds the client secret (password
  only), ``creds_certificate`` the certificate thumbprint (identifier) and private key (password),
  ``store_url`` the Redis URL (password only);
- ``proxy`` is XSOAR's "Use system proxy settings" checkbox, and there is no ``insecure``: TLS
  verification is never switched off (a private CA goes in ``ca_bundle``, as PEM text);
- ``store_backend`` offers ``integration_context`` (the default: XSOAR's per-instance store) or ``redis``;
- ``integrationReliability`` (Source Reliability) and ``official_context_paths`` exist only here;
- who sets a field is manifest.json's ``x-tier`` (see presentation()): no field is named here for that.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if __package__:
    from .generated import generator_main
    from .yaml_text import dump
else:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generated import generator_main  # type: ignore[import-not-found,no-redef]
    from yaml_text import dump  # type: ignore[import-not-found,no-redef]

PACK_DIR = Path(__file__).resolve().parents[1]
INTEGRATION_DIR = PACK_DIR / "Integrations" / "MDEIPStatistics"
YML_PATH = INTEGRATION_DIR / "MDEIPStatistics.yml"
REPO = PACK_DIR.parents[2]

INTEGRATION_ID = "MDE IP Statistics"
COMMAND = "mde-get-ip-statistics"
OUTPUT_PREFIX = "MDE.IPStatistics"
LEGACY_PREFIX = "MicrosoftATP.IPStatistics"
DOCKER_REPOSITORY = "mde-ipstats/xsoar"
FROM_VERSION = "6.10.0"
RELIABILITIES = ["A+ - 3rd party enrichment", "A - Completely reliable", "B - Usually reliable",
                 "C - Fairly reliable", "D - Not usually reliable", "E - Unreliable",
                 "F - Reliability cannot be judged"]

DISPLAY: dict[str, str] = {
    "tenant_id": "Tenant ID (directory ID or verified domain)",
    "client_id": "Client ID (application ID)",
    "public_certificate": "Certificate (PEM, instead of the thumbprint)",
    "auth_mode": "Authentication mode",
    "managed_identity_client_id": "Managed identity client ID (user-assigned; empty: system-assigned)",
    "cloud": "Microsoft cloud",
    "region": "Defender API region",
    "api_url": "Defender API URL (override)",
    "login_url": "Entra ID sign-in URL (override)",
    "scope": "Token scope (override)",
    "ca_bundle": "Trusted CA certificates (PEM text or file path)",
    "timeout_s": "HTTP read timeout (seconds)",
    "item_budget_s": "Time budget per IP (seconds)",
    "breaker_threshold": "Defender down: failed calls in a row before lookups pause (0: never)",
    "breaker_probe_interval_s": "Defender down: one test call every (seconds)",
    "store_unavailable": "Redis unreachable: go on with local state, or fail",
    "store_retry_s": "Redis unreachable: try it again every (seconds)",
    "cache_ttl_s": "Result cache lifetime (seconds, 0 disables)",
    "rate_limit_per_minute": "Rate limit: calls per minute",
    "rate_limit_per_hour": "Rate limit: calls per hour",
    "interactive_reserve_percent": "Rate limit: interactive reserve (% of each window)",
    "bulk_max_percent": "Rate limit: bulk cap (% of each window)",
    "interactive_budget_s": "Time budget per interactive lookup (seconds)",
    "rate_limit_time_scale": "Rate-limit time scale (testing only)",
    "rare_device_threshold": "Rare: seen on at most this many devices",
    "novelty_hours": "New: first seen within this many hours",
}
LONG_TEXT = {"ca_bundle", "public_certificate"}
REACH = {"region", "api_url", "login_url", "scope", "ca_bundle", "proxy", "timeout_s", "item_budget_s",
         "interactive_budget_s", "breaker_threshold", "breaker_probe_interval_s"}
"""Advanced fields about how the instance reaches Entra ID and Defender: XSOAR's Connect section. The other
advanced fields (cache, limits, store, thresholds: how answers are gathered) go to its Collect section."""
XSOAR_ONLY_SECTION = {"integrationReliability": "Collect", "official_context_paths": "Collect"}


TIER_ORDER = {"basic": 0, "advanced": 1, "testing": 2}
"""The basics first (a stable sort: each tier in manifest order)."""


def presentation(name: str, tier: str) -> dict[str, Any]:
    """XSOAR's section/advanced/hidden for a field of manifest.json's tier (x-tier): the basics every
    instance needs open in Connect; advanced fields behind "Show advanced", in Connect or Collect; a
    testing-only field hidden (XSOAR still passes its default)."""
    if tier == "basic":
        return {"section": "Connect"}
    if tier == "advanced":
        return {"section": "Connect" if name in REACH else "Collect", "advanced": True}
    if tier == "testing":
        return {"section": "Collect", "advanced": True, "hidden": True}
    raise ValueError(f"configuration.{name}: unknown x-tier {tier!r}")


CREDENTIALS: dict[str, dict[str, Any]] = {
    "client_secret": {"name": "credentials", "display": "", "displaypassword": "Client secret",
                      "hiddenusername": True,
                      "additionalinfo": "The client secret's Value (not its ID). Leave empty to use a certificate."},
    "private_key": {"name": "creds_certificate", "display": "Certificate thumbprint",
                    "displaypassword": "Certificate private key (PEM)",
                    "additionalinfo": "Instead of a client secret: the SHA-1 thumbprint of the certificate uploaded "
                                      "to the app registration, and its unencrypted PEM private key."},
    "store_url": {"name": "store_url", "display": "", "displaypassword": "Redis URL (store_backend redis)",
                  "hiddenusername": True,
                  "additionalinfo": "redis://host:port/db or rediss://...; only with store_backend redis."},
}
PAIRED_WITH_CREDENTIAL = {"thumbprint": "private_key"}
"""Fields carried inside another field's credentials parameter (the identifier half)."""

# MDE.IPStatistics: context key -> (where in the core result, XSOAR output type)
CONTEXT_FIELDS: dict[str, tuple[str, str]] = {
    "IPAddress": ("data.ipAddress", "String"),
    "OrganizationPrevalence": ("data.organizationPrevalence", "Number"),
    "OrgPrevalence": ("data.orgPrevalence", "String"),
    "OrgFirstSeen": ("data.orgFirstSeen", "Date"),
    "OrgLastSeen": ("data.orgLastSeen", "Date"),
    "SeenInOrg": ("data.seenInOrg", "Boolean"),
    "LookBackHours": ("data.lookBackHours", "Number"),
    "Verdict": ("data.verdict", "String"),
    "IPScope": ("data.ipScope", "String"),
    "NewInWindow": ("data.newInWindow", "Boolean"),
    "Cached": ("result.cached", "Boolean"),
    "CacheAgeSeconds": ("result.cache_age_s", "Number"),
    "Warnings": ("result.warnings", "String"),
    "Lane": ("summary.lane", "String"),
    "LaneWaitSeconds": ("summary.lane_wait_s", "Number"),
}
STANDARD_OUTPUTS: list[tuple[str, str, str]] = [
    ("IP.Address", "The IP address.", "String"),
    ("IP.OrganizationPrevalence", "Devices in the organization that communicated with the IP in the window.", "Number"),
    ("IP.OrganizationFirstSeen", "First communication within the look-back window.", "Date"),
    ("IP.OrganizationLastSeen", "Last communication within the look-back window.", "Date"),
    ("DBotScore.Indicator", "The indicator that was tested.", "String"),
    ("DBotScore.Type", "The indicator type.", "String"),
    ("DBotScore.Vendor", "The vendor used to calculate the score.", "String"),
    ("DBotScore.Score", "Always 0 (unknown): prevalence is not reputation.", "Number"),
    ("DBotScore.Reliability", "The Source Reliability parameter of the instance.", "String"),
    ("DBotScore.Message", "The answer in words.", "String"),
    (f"{LEGACY_PREFIX}.IPAddress", "The IP address (only with official_context_paths).", "String"),
    (f"{LEGACY_PREFIX}.Statistics.OrgPrevalence", "Devices, as a string (only with official_context_paths).",
     "String"),
    (f"{LEGACY_PREFIX}.Statistics.OrgFirstSeen", "First seen (only with official_context_paths).", "Date"),
    (f"{LEGACY_PREFIX}.Statistics.OrgLastSeen", "Last seen (only with official_context_paths).", "Date"),
]


def load_manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))
    return data


def _resolve(schema: dict[str, Any]) -> tuple[set[str], list[Any] | None]:
    """The JSON types a property allows (null aside) and its enum."""
    kinds = {schema.get("type")} | {o.get("type") for o in schema.get("anyOf", [])}
    enum = schema.get("enum") or next((o["enum"] for o in schema.get("anyOf", []) if "enum" in o), None)
    return {k for k in kinds if k and k != "null"}, enum


def _default_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def configuration(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The instance parameters, the basics first (each tier in manifest.json's order), then the XSOAR-only ones."""
    schema = manifest["configuration"]
    required = set(schema.get("required", []))
    params: list[dict[str, Any]] = []
    for name, prop in sorted(schema["properties"].items(), key=lambda item: TIER_ORDER.get(item[1].get("x-tier"), 0)):
        if name in PAIRED_WITH_CREDENTIAL:
            continue
        description = prop.get("description") or prop.get("title") or name
        shown = presentation(name, prop.get("x-tier", ""))
        if name in CREDENTIALS:
            param = {"display": "", "name": "", "type": 9, "required": False, **CREDENTIALS[name], **shown}
            params.append(_ordered(param, name))
            continue
        kinds, enum = _resolve(prop)
        param = {"display": DISPLAY.get(name, description), "name": name, "required": name in required,
                 "additionalinfo": description}
        if name == "proxy":
            param.update(display="Use system proxy settings", type=8, defaultvalue="false",
                         additionalinfo="Send sign-in and API calls through the proxy the XSOAR server or engine "
                                        "is configured with (HTTPS_PROXY); off, no proxy is used.")
        elif name == "store_backend":
            param.update(display="Shared state store", type=15, options=["integration_context", "redis"],
                         defaultvalue="integration_context",
                         additionalinfo="Where the token cache, result cache and rate-limit ledger live between "
                                        "commands: this instance's integration context, or Redis (store_url), which "
                                        "instances of the same application can share.")
        elif enum:
            param.update(type=15, options=[str(v) for v in enum])
        elif name in LONG_TEXT:
            param["type"] = 12
        elif "boolean" in kinds:
            param["type"] = 8
        else:
            param["type"] = 0
        default = _default_text(prop.get("default"))
        if default is not None and "defaultvalue" not in param:
            param["defaultvalue"] = default
        params.append(_ordered({**param, **shown}, name))
    params.append(_ordered({
        "display": "Source Reliability", "name": "integrationReliability", "type": 15, "required": False,
        "defaultvalue": "B - Usually reliable", "options": RELIABILITIES,
        "additionalinfo": "Reliability of this source, written with each DBotScore (score 0: prevalence is not "
                          "reputation)."}, "integrationReliability"))
    params.append(_ordered({
        "display": "Also write the official integration's context paths", "name": "official_context_paths",
        "type": 8, "required": False, "defaultvalue": "false",
        "additionalinfo": f"Write {LEGACY_PREFIX}.IPAddress and .Statistics.{{OrgPrevalence, OrgFirstSeen, "
                          "OrgLastSeen} as the official Microsoft Defender for Endpoint integration does, so "
                          "playbooks written for it work unchanged."}, "official_context_paths"))
    return params


_KEY_ORDER = ("display", "displaypassword", "name", "type", "required", "hiddenusername", "defaultvalue", "options",
              "additionalinfo", "section", "advanced", "hidden")


def _ordered(param: dict[str, Any], field: str) -> dict[str, Any]:
    param = {"section": XSOAR_ONLY_SECTION.get(param["name"], "Connect"), **param}
    unknown = set(param) - set(_KEY_ORDER)
    if unknown:
        raise ValueError(f"{field}: unexpected parameter keys {sorted(unknown)}")
    return {key: param[key] for key in _KEY_ORDER if key in param}


def _output_descriptions(manifest: dict[str, Any]) -> dict[str, str]:
    output = manifest["actions"]["get_ip_statistics"]["output"]
    data = output["$defs"]["IpStatistics"]["properties"]
    found = {f"data.{k}": v.get("description", "") for k, v in data.items()}
    found.update({f"result.{k}": v.get("description", "") for k, v in output["properties"].items()})
    summary = output["$defs"]["IpStatisticsSummary"]["properties"]
    found.update({f"summary.{k}": v.get("description", "") for k, v in summary.items()})
    return found


def commands(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    action = manifest["actions"]["get_ip_statistics"]
    inputs = action["input"]["properties"]
    described = _output_descriptions(manifest)
    outputs = []
    for key, (source, kind) in CONTEXT_FIELDS.items():
        if source not in described:
            raise KeyError(f"manifest.json declares no {source} for {OUTPUT_PREFIX}.{key}")
        outputs.append({"contextPath": f"{OUTPUT_PREFIX}.{key}", "description": described[source] + ".",
                        "type": kind})
    outputs += [{"contextPath": path, "description": text, "type": kind} for path, text, kind in STANDARD_OUTPUTS]
    lookback = inputs["lookback_hours"]
    return [*_ip_statistics_command(action, inputs, outputs, lookback), *sign_in_commands(manifest)]


SIGN_IN_PREFIX = "MDE.SignIn"
SIGN_IN_FIELDS: dict[str, tuple[str, str]] = {
    "State": ("state", "String"),
    "User": ("user", "String"),
    "VerificationURI": ("verification_uri", "String"),
    "UserCode": ("user_code", "String"),
    "ExpiresAt": ("expires_at", "Date"),
}
SIGN_IN_COMMANDS: list[tuple[str, str, str]] = [
    ("mde-auth-start", "start_sign_in", " Needs auth_mode delegated."),
    ("mde-auth-complete", "complete_sign_in", ""),
    ("mde-auth-test", "test_connectivity", " In delegated mode it names the signed-in user."),
    ("mde-auth-reset", "sign_out", ""),
]
"""Delegated access: XSOAR's conventional command names over the core's device-code sign-in actions."""


def sign_in_commands(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    data = manifest["actions"]["start_sign_in"]["output"]["$defs"]["SignInData"]["properties"]
    def described(source: str) -> str:
        if data[source].get("description"):
            return str(data[source]["description"]) + "."
        states = [str(v) for v in data[source].get("enum", [])]
        return f"One of {', '.join(states)}." if states else f"{source}."

    outputs = [{"contextPath": f"{SIGN_IN_PREFIX}.{key}", "description": described(source), "type": kind}
               for key, (source, kind) in SIGN_IN_FIELDS.items()]
    commands = []
    for name, action, note in SIGN_IN_COMMANDS:
        declared = manifest["actions"][action]
        command: dict[str, Any] = {"name": name, "description": declared["description"] + note, "arguments": []}
        for argument, schema in declared["input"].get("properties", {}).items():
            entry: dict[str, Any] = {"name": argument, "description": schema.get("description", argument) + ".",
                                     "required": False}
            if "default" in schema:
                entry["defaultValue"] = str(schema["default"])
            command["arguments"].append(entry)
        if action != "test_connectivity":
            command["outputs"] = outputs
        commands.append(command)
    return commands


def _ip_statistics_command(action: dict[str, Any], inputs: dict[str, Any], outputs: list[dict[str, Any]],
                           lookback: dict[str, Any]) -> list[dict[str, Any]]:
    return [{
        "name": COMMAND,
        "description": action["description"] + " Every input IP is in the readable table; a failed IP is an "
                                               "error entry saying what to do, and the others are still answered.",
        "arguments": [
            {"name": "ip", "description": inputs["ip"]["description"] + ".", "required": True, "default": True,
             "isArray": True},
            {"name": "lookback_hours", "description": lookback["description"] + ".", "required": False,
             "defaultValue": str(lookback["default"])},
            # No defaultValue: a lane not given is the integration's to tell (the core's default otherwise).
            {"name": "lane", "description": inputs["lane"]["description"] + ".", "required": False,
             "auto": "PREDEFINED", "predefined": [str(lane) for lane in inputs["lane"]["enum"]]},
        ],
        "outputs": outputs,
    }]


def integration(manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The split-layout YAML document (script empty: the code is MDEIPStatistics.py)."""
    manifest = manifest or load_manifest()
    return {
        "commonfields": {"id": INTEGRATION_ID, "version": -1},
        "name": INTEGRATION_ID,
        "display": "MDE IP Statistics (Microsoft Defender for Endpoint)",
        "category": "Data Enrichment & Threat Intelligence",
        "provider": "Microsoft",  # the service's provider: required of packs on the platform marketplace (IN169)
        "sectionorder": ["Connect", "Collect"],
        "description": manifest["description"],
        "configuration": configuration(manifest),
        "script": {
            "script": "",
            "type": "python",
            "subtype": "python3",
            "dockerimage": f"{DOCKER_REPOSITORY}:{manifest['version']}",
            "isfetch": False,
            "runonce": False,
            "commands": commands(manifest),
        },
        "fromversion": FROM_VERSION,
        "tests": ["No tests (auto formatted)"],
    }


def render() -> str:
    header = "# Generated from manifest.json by connector/platforms/xsoar/packtools/integration_yml.py: do not edit.\n"
    return header + str(dump(integration()))


def main(argv: list[str] | None = None) -> int:
    return generator_main(YML_PATH, render, "the integration YAML", argv)


if __name__ == "__main__":
    sys.exit(main())
