"""manifest.json: the connector's single declaration, derived from the models (connector/models.py).

``python -m connector.manifest --write`` regenerates manifest.json from the models; a test
proves the committed file equals what the models produce, so the declaration and the code cannot
drift. Platform manifests (the Splunk SOAR app JSON, ...) are in turn generated from manifest.json.
Where the manifest is made and checked (generation, tests, packaging) its schemas are checked against
the JSON Schema meta-schema and its examples against its schemas. At run time it is only read: every
action run is a fresh process on most platforms, and jsonschema, the models that only the declaration
needs and the delegated sign-in machinery are imported when something asks for them, not before.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.errors import Category
from connector.models import declared_elsewhere
from connector.wording import HOW_TO_COMPLETE_SIGN_IN, speak

if TYPE_CHECKING:
    import jsonschema
    from pydantic import BaseModel

    from connector.declared import GetIpStatisticsInput as GetIpStatisticsInput
    from connector.declared import TestConnectivityInput as TestConnectivityInput

MANIFEST_NAME = "manifest.json"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

CATEGORY_HELP: dict[Category, str] = {
    Category.INVALID_INPUT: "The IP address or look-back is not valid; nothing was sent to Defender.",
    Category.CONFIGURATION: "A configuration field is wrong (the message names it): fix it in the connector's "
                            "configuration.",
    Category.AUTHENTICATION: "Entra ID or Defender refused the credential or token: fix the secret/certificate; "
                             "with delegated access, sign the analyst in again.",
    Category.PERMISSION: "The token lacks Ip.Read.All (application permission with admin consent), the signed-in "
                         "analyst lacks Defender's View data role (delegated access), or the feature is off.",
    Category.RATE_LIMITED: "Defender's 100/min or 1,500/h limit: retry after retry_after_s.",
    Category.UNAVAILABLE: "Defender or Entra ID answered 5xx past the retries: retry later.",
    Category.NETWORK: "The service could not be reached (DNS, TLS, proxy, timeout).",
    Category.UNEXPECTED_RESPONSE: "The answer was not what the API documents (body, type, size).",
}


def _schema(shape: type[BaseModel], title: str | None = None) -> dict[str, Any]:
    """A model's JSON Schema, in the form the platform generators read: the model's own schema at the
    top (its nested models under $defs), keywords sorted, and a secret property (writeOnly) marked
    x-secret."""
    schema = shape.model_json_schema()
    if title:
        schema["title"] = title
    for node in (schema, *schema.get("$defs", {}).values()):
        for prop in node.get("properties", {}).values():
            if any(branch.get("writeOnly") for branch in prop.get("anyOf", [prop])):
                prop["x-secret"] = True
    ordered: dict[str, Any] = _sorted_keys(schema)
    ordered["$schema"] = SCHEMA_DIALECT
    return ordered


def _sorted_keys(node: Any, *, names: bool = False) -> Any:
    """Keywords in sorted order (a stable, reviewable manifest.json); property names keep the order
    they were declared in, the order a form lists them."""
    if isinstance(node, dict):
        keys = list(node) if names else sorted(node)
        return {key: _sorted_keys(node[key], names=key == "properties" and not names) for key in keys}
    if isinstance(node, list):
        return [_sorted_keys(item) for item in node]
    return node


def _examples() -> list[dict[str, Any]]:
    seen = {
        "action": "get_ip_statistics", "status": "success",
        "message": "10.209.67.177 (private) is common in the organization: seen on 63515 devices in the last "
                   "48 hours, first 47 hours ago, last 2 minutes ago",
        "parameters": {"ip": "10.209.67.177", "lookback_hours": 48},
        "data": [{"ipAddress": "10.209.67.177", "organizationPrevalence": 63515, "orgPrevalence": "63515",
                  "orgFirstSeen": "2017-07-30T13:36:06Z", "orgLastSeen": "2017-08-01T13:32:59Z",
                  "seenInOrg": True, "lookBackHours": 48, "verdict": "common", "ipScope": "private",
                  "ipScopeDetail": None, "firstSeenAgeHours": 47.0, "lastSeenAgeHours": 0.03,
                  "newInWindow": False}],
        "summary": {"organization_prevalence": 63515, "seen_in_org": True, "verdict": "common",
                    "ip_scope": "private"},
        "error": None, "cached": False, "cache_age_s": None,
    }
    not_seen = {
        "action": "get_ip_statistics", "status": "success",
        "message": "203.0.113.77 (reserved: documentation) was not seen on any device in the organization in the "
                   "last 720 hours",
        "parameters": {"ip": "203.0.113.77", "lookback_hours": 720},
        "data": [{"ipAddress": "203.0.113.77", "organizationPrevalence": 0, "orgPrevalence": "0",
                  "orgFirstSeen": None, "orgLastSeen": None, "seenInOrg": False, "lookBackHours": 720,
                  "verdict": "not_seen", "ipScope": "reserved", "ipScopeDetail": "documentation",
                  "firstSeenAgeHours": None, "lastSeenAgeHours": None, "newInWindow": False}],
        "summary": {"organization_prevalence": 0, "seen_in_org": False, "verdict": "not_seen",
                    "ip_scope": "reserved"},
        "error": None, "cached": True, "cache_age_s": 42.5,
    }
    rare = {
        "action": "get_ip_statistics", "status": "success",
        "message": "10.3.0.1 (private) is rare in the organization: seen on 2 devices in the last 720 hours, "
                   "first 3 hours ago (new), last 1 hour ago",
        "parameters": {"ip": "10.3.0.1", "lookback_hours": 720},
        "data": [{"ipAddress": "10.3.0.1", "organizationPrevalence": 2, "orgPrevalence": "2",
                  "orgFirstSeen": "2026-11-30T03:12:40Z", "orgLastSeen": "2026-11-30T05:02:11Z",
                  "seenInOrg": True, "lookBackHours": 720, "verdict": "rare", "ipScope": "private",
                  "ipScopeDetail": None, "firstSeenAgeHours": 3.05, "lastSeenAgeHours": 1.22,
                  "newInWindow": True}],
        "summary": {"organization_prevalence": 2, "seen_in_org": True, "verdict": "rare", "ip_scope": "private"},
        "error": None, "cached": False, "cache_age_s": None,
    }
    denied_message = ("Defender refused the call (403 Forbidden): the token lacks Ip.Read.All. Grant the "
                      "application permission Ip.Read.All (WindowsDefenderATP) and admin consent.")
    denied = {
        "action": "get_ip_statistics", "status": "failed", "message": denied_message,
        "parameters": {"ip": "8.8.8.8", "lookback_hours": 720},
        "data": [], "summary": {"ip_scope": "public"},
        "error": {"category": "permission", "http_status": 403, "code": "Forbidden", "message": denied_message,
                  "correlation_id": "3b2c8e6e-0d1f-4b6f-9d44-5f0c1c7e2a10", "retry_after_s": None},
        "cached": False, "cache_age_s": None,
    }
    invalid = {
        "action": "get_ip_statistics", "status": "failed",
        "message": "'1.1.1.1/../machines' is not an IP address: give one IPv4 or IPv6 address (no ranges, "
                   "ports, zone ids, host names or URL characters).",
        "parameters": {"ip": "1.1.1.1/../machines", "lookback_hours": 720},
        "data": [], "summary": {},
        "error": {"category": "invalid_input", "http_status": None, "code": "InvalidIpAddress",
                  "message": "'1.1.1.1/../machines' is not an IP address: give one IPv4 or IPv6 address (no "
                             "ranges, ports, zone ids, host names or URL characters).",
                  "correlation_id": None, "retry_after_s": None},
        "cached": False, "cache_age_s": None,
    }
    return [
        {"input": {"ip": "10.209.67.177", "lookback_hours": 48}, "output": [seen]},
        {"input": {"ip": "203.0.113.77"}, "output": [not_seen]},
        {"input": {"ip": "10.3.0.1, 8.8.8.8"}, "output": [rare, denied]},
        {"input": {"ip": ["1.1.1.1/../machines"]}, "output": [invalid]},
    ]


def build_manifest() -> dict[str, Any]:
    """manifest.json as the models define it."""
    from connector.declared import ConnectivityResult, GetIpStatisticsInput, IpStatisticsResult, TestConnectivityInput
    from connector.settings import Settings

    return {
        "name": "mde-ipstats",
        "display_name": "Microsoft Defender for Endpoint IP statistics",
        "version": "0.1.0",
        "description": "Enriches IP addresses with Defender for Endpoint organization statistics: on how many "
                       "devices an IP was seen, first and last, in the last N hours.",
        "product_vendor": "Microsoft",
        "product_name": "Defender for Endpoint",
        "publisher": "mde-ipstats maintainers",
        "license": "MIT",
        "api": {
            "request": "GET /api/ips/{ip}/stats?lookBackHours={N}",
            "permission": "Ip.Read.All (application, admin consent)",
            "rate_limits": {"per_minute": 100, "per_hour": 1500, "per": "application and tenant"},
        },
        "configuration": _schema(Settings),
        "actions": {
            "get_ip_statistics": {
                "display_name": "get ip statistics",
                "description": "Organization prevalence of IP addresses: devices that communicated with each IP, "
                               "first and last seen, in the look-back window. One result per address.",
                "type": "investigate",
                "read_only": True,
                "input": _schema(GetIpStatisticsInput, "get_ip_statistics input"),
                "output": _schema(IpStatisticsResult, "get_ip_statistics result"),
                "examples": _examples(),
            },
            "test_connectivity": {
                "display_name": "test connectivity",
                "description": "Checks sign-in, the Ip.Read.All permission in the token, and that the API "
                               "answers; says which of the three failed.",
                "type": "test",
                "read_only": True,
                "input": _schema(TestConnectivityInput, "test_connectivity input"),
                "output": _schema(ConnectivityResult, "test_connectivity result"),
                "examples": [],
            },
            **_sign_in_actions(),
        },
        "error_categories": {category.value: text for category, text in CATEGORY_HELP.items()},
    }


def _sign_in_examples() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    uri, code, expires = "https://microsoft.com/devicelogin", "GQRF7PQ2X", "2026-11-30T06:45:00Z"
    said = (f"To sign in, use a web browser to open the page {uri} and enter the code {code} to authenticate.")
    started: dict[str, Any] = {
        "action": "start_sign_in", "status": "success",
        "message": speak(f"{said} Then {HOW_TO_COMPLETE_SIGN_IN}; the code expires at {expires}."),
        "parameters": {},
        "data": [{"state": "pending", "user": None, "verification_uri": uri, "user_code": code, "message": said,
                  "expires_in_s": 900, "expires_at": expires, "interval_s": 5, "scopes": []}],
        "summary": {"state": "pending", "verification_uri": uri, "user_code": code, "expires_at": expires},
        "error": None, "cached": False, "cache_age_s": None,
    }
    done_message = ("Signed in as ada@contoso.com: lookups now run with this person's access (delegated "
                    "Ip.Read.All).")
    completed: dict[str, Any] = {
        "action": "complete_sign_in", "status": "success", "message": done_message, "parameters": {"wait_s": 0},
        "data": [{"state": "signed_in", "user": "ada@contoso.com", "verification_uri": None, "user_code": None,
                  "message": None, "expires_in_s": None, "expires_at": None, "interval_s": None,
                  "scopes": ["Ip.Read.All"]}],
        "summary": {"state": "signed_in", "user": "ada@contoso.com"},
        "error": None, "cached": False, "cache_age_s": None,
    }
    return [{"input": {}, "output": [started]}], [{"input": {"wait_s": 0}, "output": [completed]}]


def _sign_in_actions() -> dict[str, Any]:
    """The delegated sign-in actions (auth_mode delegated): see connector/signin.py."""
    from connector.declared import CompleteSignInInput, SignInResult, SignOutInput, StartSignInInput

    started, completed = _sign_in_examples()
    common = {"type": "generic", "read_only": True, "output": _schema(SignInResult, "sign-in result")}
    return {
        "start_sign_in": {
            **common, "display_name": "start sign in",
            "description": "Delegated access: starts a device-code sign-in and returns the URL and code the analyst "
                           "enters there; then complete the sign-in.",
            "input": _schema(StartSignInInput, "start_sign_in input"), "examples": started,
        },
        "complete_sign_in": {
            **common, "display_name": "complete sign in",
            "description": "Delegated access: checks (once, or for up to wait_s seconds) whether the analyst has "
                           "finished signing in; summary.state is pending or signed_in.",
            "input": _schema(CompleteSignInInput, "complete_sign_in input"), "examples": completed,
        },
        "sign_out": {
            **common, "display_name": "sign out",
            "description": "Delegated access: forgets the signed-in analyst's tokens.",
            "input": _schema(SignOutInput, "sign_out input"), "examples": [],
        },
    }


def fields_of_tier(configuration: dict[str, Any], *tiers: str) -> list[str]:
    """The configuration fields whose x-tier is one of ``tiers``, tier by tier in the order given (the
    basics first when asked so), each tier in declaration order: what a platform's screen lists."""
    properties: dict[str, Any] = configuration["properties"]
    return [name for tier in tiers for name, prop in properties.items() if prop.get("x-tier") == tier]


def manifest_path() -> Path:
    """The manifest beside the package (wheel) or at the repository root (checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / MANIFEST_NAME, here.parent / MANIFEST_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{MANIFEST_NAME} not found beside {here}")


def validate_manifest(manifest: dict[str, Any], *, meta: bool = True) -> None:
    """Every example satisfies its action's schemas, every configuration field says who sets it (x-tier);
    with ``meta``, each schema is valid JSON Schema.

    Run where the manifest is made and checked (generation, tests, packaging), never on an action's
    path: importing jsonschema and compiling the schemas would cost every fresh action process more
    than its lookup.
    """
    import jsonschema

    from connector.settings import TIER, TIERS

    if meta:
        jsonschema.Draft202012Validator.check_schema(manifest["configuration"])
    untiered = [name for name, prop in manifest["configuration"]["properties"].items() if prop.get(TIER) not in TIERS]
    if untiered:
        raise jsonschema.ValidationError(f"configuration fields {untiered} have no {TIER} (one of {', '.join(TIERS)}): "
                                         "say who sets each field (connector/settings.py)")
    for name, action in manifest["actions"].items():
        if meta:
            for part in ("input", "output"):
                jsonschema.Draft202012Validator.check_schema(action[part])
        # Validators built directly: jsonschema.validate() would meta-check the schema every time.
        check_input = jsonschema.Draft202012Validator(action["input"])
        check_output = jsonschema.Draft202012Validator(action["output"])
        for example in action["examples"]:
            check_input.validate(example["input"])
            for result in example["output"]:
                check_output.validate(result)
                if result["action"] != name:
                    raise jsonschema.ValidationError(f"example of {name} claims action {result['action']}")


@cache
def load_manifest() -> dict[str, Any]:
    """manifest.json as shipped (checked where it is made: a test proves it equals the models and
    validate_manifest passes)."""
    with manifest_path().open(encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


@cache
def input_validator(action: str) -> jsonschema.protocols.Validator:
    """The validator of an action's input schema, built once per process, for input the actions'
    own parsers do not already judge (see actions.parse_get_ip_statistics)."""
    import jsonschema

    return jsonschema.Draft202012Validator(load_manifest()["actions"][action]["input"])


def main(argv: list[str] | None = None) -> int:
    import argparse  # here, not at the top: every action process imports this module, few run main()

    parser = argparse.ArgumentParser(description="Generate or check manifest.json from the models.")
    parser.add_argument("--write", type=Path, nargs="?", const=Path(MANIFEST_NAME), help="write the manifest")
    args = parser.parse_args(argv)
    manifest = build_manifest()
    validate_manifest(manifest)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


__getattr__ = declared_elsewhere(__name__, ("GetIpStatisticsInput", "TestConnectivityInput"))
"""The input models of the actions whose input the code parses itself (connector/declared.py)."""


if __name__ == "__main__":
    raise SystemExit(main())
