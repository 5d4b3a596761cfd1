"""manifest.json is what the models say, is valid JSON Schema, and its examples satisfy it."""

import json

import jsonschema
import pytest

from connector.manifest import build_manifest, load_manifest, manifest_path, validate_manifest
from connector.models import load
from connector.results import ActionResult
from connector.settings import TIER, TIERS, Settings


def test_committed_manifest_equals_the_models() -> None:
    committed = json.loads(manifest_path().read_text(encoding="utf-8"))
    assert committed == build_manifest(), "run: .venv/bin/python -m connector.manifest --write"


def test_configuration_fields_are_the_settings_fields_and_secrets_are_marked() -> None:
    properties = load_manifest()["configuration"]["properties"]
    assert set(properties) == set(Settings.model_fields)
    secrets = {name for name, spec in properties.items() if spec.get("x-secret")}
    assert secrets == {"client_secret", "private_key", "store_url"}
    # client_id is required by auth_mode application and delegated, not by managed_identity (a rule across
    # fields, in Settings): only tenant_id is required whatever the mode.
    assert load_manifest()["configuration"]["required"] == ["tenant_id"]


def test_every_configuration_field_says_who_sets_it() -> None:
    properties = load_manifest()["configuration"]["properties"]
    tiers = {name: spec.get(TIER) for name, spec in properties.items()}
    assert all(tier in TIERS for tier in tiers.values()), tiers
    # every install needs the tenant, the client and a credential; the emulator's time compression is ours alone
    for basic in ("tenant_id", "client_id", "client_secret", "private_key", "thumbprint", "public_certificate",
                  "auth_mode", "cloud"):
        assert tiers[basic] == "basic", basic
    assert tiers["rate_limit_time_scale"] == "testing"
    assert {tiers[name] for name in ("api_url", "login_url", "scope", "store_url", "cache_ttl_s")} == {"advanced"}


def test_a_configuration_field_without_a_tier_is_refused() -> None:
    manifest = build_manifest()
    del manifest["configuration"]["properties"]["timeout_s"][TIER]
    with pytest.raises(jsonschema.ValidationError, match="timeout_s"):
        validate_manifest(manifest, meta=False)


def test_output_schema_accepts_real_results_and_refuses_drift() -> None:
    schema = load_manifest()["actions"]["get_ip_statistics"]["output"]
    example = load_manifest()["actions"]["get_ip_statistics"]["examples"][0]["output"][0]
    jsonschema.validate(load(ActionResult, example).to_dict(), schema)
    drifted = dict(example, data=[dict(example["data"][0], organizationPrevalence="63515")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(drifted, schema)


def test_input_schema_declares_ip_and_lookback() -> None:
    schema = load_manifest()["actions"]["get_ip_statistics"]["input"]
    jsonschema.validate({"ip": ["10.0.0.1", "::1"], "lookback_hours": 720}, schema)
    jsonschema.validate({"ip": "10.0.0.1, 10.0.0.2"}, schema)
    for bad in ({"ip": "1.1.1.1", "lookback_hours": 721}, {"lookback_hours": 1}, {"ip": "x", "extra": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert schema["properties"]["lookback_hours"]["default"] == 720
    assert schema["properties"]["ip"]["x-contains"] == ["ip", "ipv6"]


def test_every_error_category_is_documented() -> None:
    from connector.errors import Category

    assert set(load_manifest()["error_categories"]) == {c.value for c in Category}
    enum = load_manifest()["actions"]["get_ip_statistics"]["output"]["$defs"]["Category"]["enum"]
    assert set(enum) == {c.value for c in Category}


def test_every_declared_schema_is_valid_json_schema() -> None:
    from connector.manifest import validate_manifest

    validate_manifest(load_manifest(), meta=True)
    broken = json.loads(manifest_path().read_text(encoding="utf-8"))
    broken["actions"]["get_ip_statistics"]["input"]["properties"]["lookback_hours"]["type"] = "whole number"
    with pytest.raises(jsonschema.SchemaError):
        validate_manifest(broken, meta=True)
