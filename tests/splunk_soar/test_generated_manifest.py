"""The Splunk SOAR app JSON is generated from manifest.json and agrees with it, field by field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from soar_helpers import APP_DIR, REPO

MANIFEST = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))
SOAR_TYPES = {"string": "string", "integer": "numeric", "number": "numeric", "boolean": "boolean"}
OFFICIAL_IP_PREVALENCE_PATHS = {
    "action_result.data.*.ipAddress": "string",
    "action_result.data.*.organizationPrevalence": "numeric",
    "action_result.data.*.orgPrevalence": "string",
    "action_result.data.*.orgFirstSeen": "string",
    "action_result.data.*.orgLastSeen": "string",
    "action_result.summary.organization_prevalence": "numeric",
    "action_result.status": "string",
    "action_result.message": "string",
}


@pytest.fixture(scope="module")
def app_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("manifest") / "app.json"
    wrapper = str(APP_DIR / "tools" / "soarapps_wrapper.py")  # the build's SDK override (see its docstring)
    done = subprocess.run([sys.executable, wrapper, "manifests", "create", str(out), "."],
                          cwd=APP_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def resolve(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"][2:].split("/"):
            node = node[part]
        schema = node
    return schema


def alternatives(root: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = resolve(root, schema)
    if "anyOf" in schema or "oneOf" in schema:
        return [alt for option in schema.get("anyOf", schema.get("oneOf")) for alt in alternatives(root, option)]
    return [] if schema.get("type") == "null" else [schema]


def soar_type(root: dict[str, Any], schema: dict[str, Any]) -> str:
    types = [alt.get("type", "string") for alt in alternatives(root, schema)]
    return SOAR_TYPES[next(t for t in types if t in SOAR_TYPES)]


def leaves(root: dict[str, Any], schema: dict[str, Any], prefix: str) -> dict[str, str]:
    """data path -> SOAR type for every scalar under an object schema (a list of scalars: `.name.*`)."""
    out: dict[str, str] = {}
    for name, prop in resolve(root, schema).get("properties", {}).items():
        objects = [alt for alt in alternatives(root, prop) if alt.get("type") == "object"]
        arrays = [alt for alt in alternatives(root, prop) if alt.get("type") == "array"]
        if objects:
            out.update(leaves(root, objects[0], f"{prefix}.{name}"))
        elif arrays and not any(alt.get("type") in SOAR_TYPES for alt in alternatives(root, prop)):
            out[f"{prefix}.{name}.*"] = soar_type(root, arrays[0]["items"])
        else:
            out[f"{prefix}.{name}"] = soar_type(root, prop)
    return out


def expected_outputs(action: str) -> dict[str, str]:
    """The SOAR data paths manifest.json implies, by the mapping declarations.py documents."""
    spec = MANIFEST["actions"][action]
    root = spec["output"]
    top = root["properties"]
    paths = {"action_result.status": "string", "action_result.message": "string",
             "summary.total_objects": "numeric", "summary.total_objects_successful": "numeric"}
    for name, prop in spec["input"].get("properties", {}).items():
        paths[f"action_result.parameter.{name}"] = soar_type(spec["input"], prop)
    item = resolve(root, top["data"]["items"])
    paths.update(leaves(root, item, "action_result.data.*"))
    paths.update(leaves(root, top["summary"], "action_result.summary"))
    extra = {k: v for k, v in top.items() if k not in ("action", "status", "message", "parameters", "data", "summary")}
    paths.update(leaves(root, {"type": "object", "properties": extra}, "action_result.summary"))
    return paths


def test_every_configuration_field_lands_by_its_tier(app_json: dict[str, Any]) -> None:
    """Basics first, then the advanced fields (each tier in manifest order); a testing-only field is absent."""
    fields = app_json["configuration"]
    properties = MANIFEST["configuration"]["properties"]
    shown = sorted(fields, key=lambda name: fields[name]["order"])  # the order SOAR's asset form uses
    tiers = [properties[name]["x-tier"] for name in shown]
    assert tiers == sorted(tiers, key=("basic", "advanced").index), "basics first"
    for name, prop in properties.items():
        if prop["x-tier"] == "testing":
            assert name not in fields, name
        else:
            assert prop["x-tier"] in ("basic", "advanced") and name in fields, name
    assert [n for n in fields if properties[n]["x-tier"] == "basic"] == [
        n for n, p in properties.items() if p["x-tier"] == "basic"]
    assert "rate_limit_time_scale" not in fields and next(iter(fields)) == "tenant_id"


def test_every_asset_field_has_its_configuration_fields_contract(app_json: dict[str, Any]) -> None:
    config = MANIFEST["configuration"]
    fields = app_json["configuration"]
    for name, prop in config["properties"].items():
        if name not in fields:
            continue
        field = fields[name]
        assert field["required"] is (name in config.get("required", [])), name
        if prop.get("x-secret"):
            assert field["data_type"] == "password", name
            continue
        assert field["data_type"] == soar_type(config, prop), name
        if prop.get("default") is not None:
            assert field["default"] == prop["default"], name
        enums = [alt["enum"] for alt in alternatives(config, prop) if "enum" in alt]
        if enums:
            assert field["value_list"] == enums[0], name


def test_secrets_are_exactly_the_manifest_secrets(app_json: dict[str, Any]) -> None:
    secrets = {n for n, p in MANIFEST["configuration"]["properties"].items() if p.get("x-secret")}
    assert secrets >= {"client_secret", "private_key"}
    assert {n for n, f in app_json["configuration"].items() if f["data_type"] == "password"} == secrets


def test_actions_are_the_manifest_actions(app_json: dict[str, Any]) -> None:
    actions = {a["identifier"]: a for a in app_json["actions"]}
    assert set(actions) == set(MANIFEST["actions"])
    for identifier, spec in MANIFEST["actions"].items():
        assert actions[identifier]["action"] == spec["display_name"]
        assert actions[identifier]["type"] == spec["type"]
        assert actions[identifier]["read_only"] is spec["read_only"]


def test_parameters_match_the_input_schemas(app_json: dict[str, Any]) -> None:
    actions = {a["identifier"]: a for a in app_json["actions"]}
    for identifier, spec in MANIFEST["actions"].items():
        schema = spec["input"]
        params = actions[identifier]["parameters"]
        assert list(params) == list(schema.get("properties", {})), identifier
        for name, prop in schema.get("properties", {}).items():
            param = params[name]
            assert param["required"] is (name in schema.get("required", [])), name
            assert param["data_type"] == soar_type(schema, prop), name
            assert param["primary"] is bool(prop.get("x-primary", False)), name
            assert param.get("contains") == prop.get("x-contains"), name
            assert param.get("default") == prop.get("default"), name


def test_ip_parameter_makes_the_action_available_on_ip_and_ipv6_fields(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "get_ip_statistics"]
    assert action["parameters"]["ip"]["primary"] is True
    assert set(action["parameters"]["ip"]["contains"]) == {"ip", "ipv6"}
    assert action["parameters"]["lookback_hours"]["default"] == 720


def test_output_data_paths_are_exactly_those_manifest_json_declares(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "get_ip_statistics"]
    generated = {o["data_path"]: o["data_type"] for o in action["output"]}
    assert generated == expected_outputs("get_ip_statistics")


def test_outputs_keep_the_official_defender_app_ip_prevalence_paths(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "get_ip_statistics"]
    generated = {o["data_path"]: o["data_type"] for o in action["output"]}
    for path, data_type in OFFICIAL_IP_PREVALENCE_PATHS.items():
        assert generated.get(path) == data_type, path
    assert generated["action_result.data.*.seenInOrg"] == "boolean"
    assert generated["action_result.data.*.lookBackHours"] == "numeric"
    assert generated["action_result.summary.seen_in_org"] == "boolean"


def test_the_core_judgement_has_data_paths_playbooks_can_branch_on(app_json: dict[str, Any]) -> None:
    """Issue 9: verdict, scope and novelty come from the core, declared like every other output."""
    [action] = [a for a in app_json["actions"] if a["identifier"] == "get_ip_statistics"]
    outputs = {o["data_path"]: o for o in action["output"]}
    expected = {
        "action_result.data.*.verdict": "string", "action_result.data.*.ipScope": "string",
        "action_result.data.*.ipScopeDetail": "string", "action_result.data.*.newInWindow": "boolean",
        "action_result.data.*.firstSeenAgeHours": "numeric", "action_result.data.*.lastSeenAgeHours": "numeric",
        "action_result.summary.verdict": "string", "action_result.summary.ip_scope": "string",
    }
    assert {path: outputs[path]["data_type"] for path in expected if path in outputs} == expected
    assert set(outputs["action_result.data.*.verdict"]["example_values"]) == {"not_seen", "rare", "common"}
    assert set(outputs["action_result.summary.verdict"]["example_values"]) == {"not_seen", "rare", "common"}
    assert {"private", "public", "loopback", "link_local", "multicast", "shared", "reserved"} <= set(
        outputs["action_result.data.*.ipScope"]["example_values"])


def test_the_asset_has_the_judgement_thresholds_with_their_defaults(app_json: dict[str, Any]) -> None:
    fields = app_json["configuration"]
    assert fields["rare_device_threshold"]["data_type"] == "numeric"
    assert fields["rare_device_threshold"]["default"] == 5
    assert fields["novelty_hours"]["default"] == 24


def test_table_view_has_readable_columns_and_a_custom_view(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "get_ip_statistics"]
    columns = sorted((o["column_order"], o["column_name"]) for o in action["output"] if "column_name" in o)
    assert [name for _, name in columns] == ["IP", "Devices", "First seen", "Last seen", "Seen in organization",
                                             "Look-back (hours)", "Verdict", "Scope", "New in window"]
    assert action["render"] == {"type": "custom", "view": "src.app.render_ip_statistics"}


SIGN_IN_ACTIONS = ("start_sign_in", "complete_sign_in", "sign_out")


@pytest.mark.parametrize("identifier", SIGN_IN_ACTIONS)
def test_sign_in_output_data_paths_are_exactly_those_manifest_json_declares(app_json: dict[str, Any],
                                                                           identifier: str) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == identifier]
    generated = {o["data_path"]: o["data_type"] for o in action["output"]}
    assert generated == expected_outputs(identifier)
    for path in ("action_result.summary.state", "action_result.summary.user", "action_result.summary.user_code",
                 "action_result.summary.verification_uri", "action_result.summary.error.category",
                 "action_result.data.*.scopes.*"):
        assert path in generated, path


def test_start_sign_in_shows_where_to_go_and_which_code_in_its_table(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "start_sign_in"]
    columns = {o["data_path"]: o["column_name"] for o in action["output"] if "column_name" in o}
    assert columns == {"action_result.data.*.state": "State", "action_result.data.*.user": "User",
                       "action_result.data.*.verification_uri": "Open", "action_result.data.*.user_code": "Code",
                       "action_result.data.*.expires_at": "Code expires"}
    outputs = {o["data_path"]: o for o in action["output"]}
    assert outputs["action_result.data.*.verification_uri"]["contains"] == ["url"]
    assert set(outputs["action_result.summary.state"]["example_values"]) == {"pending", "signed_in", "signed_out"}
    assert action["parameters"] == {}


def test_complete_sign_in_waits_zero_seconds_unless_told(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "complete_sign_in"]
    wait = action["parameters"]["wait_s"]
    assert (wait["data_type"], wait["required"], wait["default"]) == ("numeric", False, 0)


def test_the_asset_offers_application_delegated_or_managed_identity_sign_in_without_requiring_a_secret(
        app_json: dict[str, Any]) -> None:
    fields = app_json["configuration"]
    assert fields["auth_mode"]["value_list"] == ["application", "delegated", "managed_identity"]
    assert fields["auth_mode"]["default"] == "application" and fields["auth_mode"]["required"] is False
    # client_id: required by application and delegated sign-in (the core says so), not by a managed identity
    assert fields["tenant_id"]["required"] is True and fields["client_id"]["required"] is False
    assert fields["managed_identity_client_id"]["required"] is False
    assert fields["client_secret"]["required"] is False and fields["private_key"]["required"] is False


def test_test_connectivity_takes_no_parameters(app_json: dict[str, Any]) -> None:
    [action] = [a for a in app_json["actions"] if a["identifier"] == "test_connectivity"]
    assert action["parameters"] == {} and not MANIFEST["actions"]["test_connectivity"]["input"]["properties"]
    assert action["type"] == "test"


def test_app_metadata_comes_from_the_app_project(app_json: dict[str, Any]) -> None:
    assert app_json["main_module"] == "src.app:app"
    assert app_json["python_version"] == "3.13"
    assert app_json["product_vendor"] == MANIFEST["product_vendor"]
    assert app_json["product_name"] == MANIFEST["product_name"]
    modules = {w["module"] for w in app_json["pip313_dependencies"]["wheel"]}
    assert "mde-ipstats" in modules and "splunk-soar-sdk" in modules
    assert not any("emulator" in m for m in modules)


def test_the_generated_app_json_is_not_committed() -> None:
    assert not (APP_DIR / "manifest.json").exists()
    assert not list(Path(APP_DIR).glob("*.json"))
