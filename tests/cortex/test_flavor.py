"""The analyzer's Cortex definition: generated from manifest.json, and what Cortex's flavor schema requires."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from connector.manifest import load_manifest
from connector.platforms.cortex import flavor

# Cortex-Analyzers utils/flavors/flavor_schema.json: required properties and the item types it allows.
REQUIRED = ("name", "version", "author", "url", "license", "description", "dataTypeList", "command", "baseConfig")
ITEM_TYPES = {"string", "number", "boolean"}
DATA_TYPES = {"domain", "file", "filename", "fqdn", "hash", "ip", "mail", "mail-subject", "other", "regexp",
              "registry", "uri_path", "url", "user-agent"}
CORTEX_ONLY = {"lookback_hours", "lane", "state_dir", "taxonomy_level_common", "taxonomy_level_rare",
               "taxonomy_level_not_seen"}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return dict(json.loads(flavor.DEFINITION.read_text(encoding="utf-8")))


def items(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in definition["configurationItems"]}


def test_the_committed_definition_is_what_manifest_json_generates() -> None:
    assert flavor.DEFINITION.read_text(encoding="utf-8") == flavor.render(flavor.generate()), (
        "run .venv/bin/python -m connector.platforms.cortex.flavor and commit MDE_IPStatistics.json")
    assert flavor.main(["--check"]) == 0


def test_the_definition_has_every_field_the_flavor_schema_requires(definition: dict[str, Any]) -> None:
    for field in REQUIRED:
        assert definition.get(field) not in (None, "", []), field
    assert re.fullmatch(r"[A-Za-z0-9_]+", definition["name"])
    assert re.fullmatch(r"\d+\.\d+", definition["version"])
    assert set(definition["dataTypeList"]) <= DATA_TYPES and definition["dataTypeList"] == ["ip"]
    assert definition["command"] == f"{definition['name']}/mde_ipstatistics.py"


def test_tlp_and_pap_checks_are_on_with_valid_ceilings(definition: dict[str, Any]) -> None:
    config = definition["config"]
    assert config["check_tlp"] is True and config["check_pap"] is True
    assert config["max_tlp"] in range(-1, 4) and config["max_pap"] in range(-1, 4)
    assert config["max_tlp"] == 2, "TLP:RED must not leave Cortex by default"


def test_every_item_has_the_shape_cortex_reads(definition: dict[str, Any]) -> None:
    for item in definition["configurationItems"]:
        assert set(item) <= {"name", "description", "type", "multi", "required", "defaultValue"}, item
        assert item["type"] in ITEM_TYPES
        assert isinstance(item["multi"], bool) and isinstance(item["required"], bool)
        assert item["description"]
        if "defaultValue" in item:
            expected = {"string": str, "number": (int, float), "boolean": bool}[item["type"]]
            assert isinstance(item["defaultValue"], expected), item


def test_items_are_what_a_cortex_administrator_sets_by_tier(definition: dict[str, Any]) -> None:
    """Every manifest field, by its x-tier: a basic one is an item (but the two Cortex supplies itself), an
    advanced one only if it is the shared store, a testing one never; basics come first."""
    fields = load_manifest()["configuration"]["properties"]
    shown = items(definition)
    for name, schema in fields.items():
        tier = schema["x-tier"]
        if tier == "basic":
            assert (name in shown) is (name not in flavor.CORTEX_SUPPLIED), name
        elif tier == "advanced":
            assert (name in shown) is (name in flavor.STORE_ITEMS), name
        else:
            assert tier == "testing" and name not in shown, name
    order = [fields[n]["x-tier"] for n in shown if n in fields]
    assert order == sorted(order, key=("basic", "advanced").index)
    assert set(shown) - set(fields) == CORTEX_ONLY
    assert {"tenant_id", "client_id", "client_secret", "cloud", "store_url"} <= set(shown)
    assert not {"rate_limit_time_scale", "api_url", "scope", "rate_limit_per_minute"} & set(shown)
    assert len(shown) <= 17


def test_required_items_and_defaults_follow_the_manifest(definition: dict[str, Any]) -> None:
    config = load_manifest()["configuration"]
    by_name = items(definition)
    assert {n for n, i in by_name.items() if i["required"]} == set(config["required"])
    for name, schema in config["properties"].items():
        if name in by_name and schema.get("default") is not None:
            assert by_name[name]["defaultValue"] == schema["default"], name


def test_secrets_are_marked_in_their_description(definition: dict[str, Any]) -> None:
    fields = load_manifest()["configuration"]["properties"]
    secrets = {n for n, s in fields.items() if s.get("x-secret")}
    assert secrets >= {"client_secret", "private_key", "store_url"}
    for name, item in items(definition).items():
        assert (flavor.CONFIDENTIAL_NOTE in item["description"]) == (name in secrets), name


def test_types_map_to_cortexs_three() -> None:
    manifest = {
        "publisher": "p", "license": "MIT", "description": "d",
        "configuration": {"required": ["a"], "properties": {
            "a": {"type": "string", "x-tier": "basic"},
            "b": {"type": "integer", "default": 3, "x-tier": "basic"},
            "c": {"type": "number", "x-tier": "basic"},
            "d": {"type": "boolean", "default": False, "x-tier": "basic"},
            "e": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "x-tier": "basic"},
            "f": {"enum": ["x", "y"], "default": "x", "x-tier": "basic"},
        }},
        "actions": {"get_ip_statistics": {"input": {"properties": {
            "lookback_hours": {"type": "integer"}, "lane": {"enum": ["interactive", "automation", "bulk"]}}}}},
    }
    generated = items(flavor.generate(manifest))
    assert {n: generated[n]["type"] for n in "abcdef"} == {
        "a": "string", "b": "number", "c": "number", "d": "boolean", "e": "string", "f": "string"}
    assert generated["d"]["defaultValue"] is False and "defaultValue" not in generated["e"]
    assert "one of: x, y" in generated["f"]["description"]


def test_a_field_with_no_single_cortex_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"configuration\.x"):
        flavor.cortex_type({"anyOf": [{"type": "string"}, {"type": "integer"}]}, "configuration.x")


def test_default_taxonomy_levels_are_levels_cortex_knows(definition: dict[str, Any]) -> None:
    by_name = items(definition)
    levels = {v: by_name[f"taxonomy_level_{v}"]["defaultValue"] for v in ("common", "rare", "not_seen")}
    assert levels == {"common": "info", "rare": "suspicious", "not_seen": "suspicious"}
    assert set(levels.values()) <= set(flavor.TAXONOMY_LEVELS)


# What Cortex-Analyzers checks of a flavor before its catalogue takes it: utils/flavors/check_json_schema.py
# validates each definition with jsonschema's Draft 7 validator and format checker against
# utils/flavors/flavor_schema.json. The schema's rules, restated (the upstream file is not vendored here):
# the nine top-level properties required, their types, a name without white space, `url` a URI, the
# catalogue's documentation fields (registration/subscription flags, homepage, logo, screenshots) typed,
# every configuration item with name, description, type, multi and required, every screenshot with a path.
CORTEX_ANALYZERS_FLAVOR_RULES: dict[str, Any] = {
    "type": "object",
    "required": list(REQUIRED),
    "properties": {
        "name": {"type": "string", "pattern": r"^[^\s]*$"},
        **{key: {"type": "string"} for key in ("version", "author", "license", "description", "command",
                                                 "baseConfig", "service_homepage")},
        "url": {"type": "string", "format": "uri"},
        "dataTypeList": {"type": "array"},
        "config": {"type": "object", "properties": {"service": {"type": ["number", "string"]}}},
        "configurationItems": {"type": "array", "items": {"$ref": "#/definitions/item"}},
        **{key: {"type": ["boolean", "string"]} for key in ("registration_required", "subscription_required",
                                                            "free_subscription")},
        "service_logo": {"type": "object"},
        "screenshots": {"type": "array", "items": {"$ref": "#/definitions/screenshot"}},
    },
    "definitions": {
        "item": {
            "required": ["name", "description", "multi", "type", "required"],
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "type": {"type": "string"},
                           "multi": {"type": "boolean"}, "required": {"type": "boolean"},
                           "defaultValue": {"type": ["string", "number", "boolean", "array"]}},
        },
        "screenshot": {"type": "object", "required": ["path"],
                       "properties": {"path": {"type": "string"}, "caption": {"type": "string"}}},
    },
}


def test_the_definition_passes_the_cortex_analyzers_flavor_check(definition: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft7Validator(CORTEX_ANALYZERS_FLAVOR_RULES, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(definition)]
    assert errors == []
    # The check is real: a definition lacking what the catalogue needs fails it.
    broken = {k: v for k, v in definition.items() if k != "baseConfig"}
    broken["configurationItems"] = [{"name": "x", "type": "string"}]
    found = sorted(e.message for e in validator.iter_errors(broken))
    assert found == sorted(f"'{name}' is a required property" for name in ("baseConfig", "description", "multi",
                                                                            "required"))


def test_the_catalogue_gets_a_png_logo_and_a_screenshot_of_the_long_report(definition: dict[str, Any]) -> None:
    """As AbuseIPDB's and GreyNoise's definitions: service_logo and screenshots are PNGs in assets/."""
    assert definition["service_logo"]["path"] == "assets/logo.png"
    assert [s["path"] for s in definition["screenshots"]] == ["assets/long_report.png"]
    for relative in ("assets/logo.png", "assets/long_report.png"):
        assert (flavor.DEFINITION.parent / relative).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), relative


def test_the_program_takes_from_cortex_what_the_flavor_leaves_out() -> None:
    """The program (which runs without this generator) names the same fields Cortex supplies itself."""
    import ast

    tree = ast.parse((flavor.DEFINITION.parent / flavor.PROGRAM).read_text(encoding="utf-8"))
    [value] = [node.value for node in tree.body if isinstance(node, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == "CORTEX_SUPPLIED" for t in node.targets)]
    assert ast.literal_eval(value) == flavor.CORTEX_SUPPLIED
