"""globalConfig.json (what UCC builds the Configuration page from) is generated from manifest.json."""

from __future__ import annotations

from typing import Any

import pytest

from connector.platforms.splunk_siem import globalconfig


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return globalconfig.load_manifest()


def _tab(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in config["pages"]["configuration"]["tabs"] if t.get("name") == name)


def test_the_committed_file_is_what_the_generator_makes_of_manifest_json(manifest: dict[str, Any]) -> None:
    assert globalconfig.GLOBAL_CONFIG.read_text(encoding="utf-8") == globalconfig.render(manifest)


def test_every_configuration_field_lands_by_its_tier(manifest: dict[str, Any]) -> None:
    """Basic on the Accounts tab, advanced on the Advanced tab, testing nowhere; NOT_EXPOSED (with a reason
    each) nowhere either; every other field in exactly one place."""
    config = globalconfig.generate(manifest)
    account = [e["field"] for e in _tab(config, "account")["entity"] if e["field"] != "name"]
    advanced = [e["field"] for e in _tab(config, "advanced")["entity"]]
    properties = manifest["configuration"]["properties"]
    for field, prop in properties.items():
        places = (field in account) + (field in advanced)
        if field in globalconfig.NOT_EXPOSED or prop["x-tier"] == "testing":
            assert places == 0, field
        else:
            assert places == 1, field
            assert field in (account if prop["x-tier"] == "basic" else advanced), field
    assert account[:2] == ["tenant_id", "client_id"] and "rate_limit_time_scale" not in advanced
    assert {"api_url", "login_url", "scope", "region"} <= set(advanced)


def test_a_field_added_to_the_core_without_a_tier_stops_the_generator(manifest: dict[str, Any]) -> None:
    grown = {**manifest, "configuration": {**manifest["configuration"], "properties": {
        **manifest["configuration"]["properties"], "new_knob": {"type": "integer"}}}}
    with pytest.raises(ValueError, match="new_knob"):
        globalconfig.generate(grown)


def test_an_advanced_field_added_to_the_core_lands_on_the_advanced_tab(manifest: dict[str, Any]) -> None:
    grown = {**manifest, "configuration": {**manifest["configuration"], "properties": {
        **manifest["configuration"]["properties"],
        "new_knob": {"type": "integer", "default": 3, "x-tier": "advanced"}}}}
    advanced = {e["field"]: e for e in _tab(globalconfig.generate(grown), "advanced")["entity"]}
    assert advanced["new_knob"]["defaultValue"] == 3


def test_secrets_are_encrypted_so_splunk_keeps_them_in_storage_passwords(manifest: dict[str, Any]) -> None:
    config = globalconfig.generate(manifest)
    entities = {e["field"]: e for tab in ("account", "advanced") for e in _tab(config, tab)["entity"]}
    secret = {f for f, s in manifest["configuration"]["properties"].items() if s.get("x-secret")}
    assert secret and secret <= set(entities)
    assert {f for f, e in entities.items() if e.get("encrypted")} == secret
    assert all("defaultValue" not in entities[f] for f in secret)
    assert entities["private_key"]["type"] == "textarea"  # a PEM is pasted with its line breaks


def test_the_account_tab_asks_for_tenant_and_client_and_offers_secret_or_certificate(
        manifest: dict[str, Any]) -> None:
    account = {e["field"]: e for e in _tab(globalconfig.generate(manifest), "account")["entity"]}
    assert account["tenant_id"].get("required") and account["client_id"].get("required")
    assert not account["client_secret"].get("required") and not account["private_key"].get("required")
    assert account["cloud"]["type"] == "singleSelect"
    assert [o["value"] for o in account["cloud"]["options"]["autoCompleteFields"]] == \
        manifest["configuration"]["properties"]["cloud"]["enum"]


def test_settings_have_proxy_logging_and_the_shared_knobs(manifest: dict[str, Any]) -> None:
    config = globalconfig.generate(manifest)
    types = [t.get("type") for t in config["pages"]["configuration"]["tabs"]]
    assert "proxyTab" in types and "loggingTab" in types
    advanced = {e["field"] for e in _tab(config, "advanced")["entity"]}
    assert {"ca_bundle", "cache_ttl_s", "store_backend", "store_url"} <= advanced
    assert "rare_device_threshold" in advanced or "rare_device_threshold" not in manifest["configuration"]["properties"]


def test_ucc_declares_python_3_13_and_the_manifest_version(manifest: dict[str, Any]) -> None:
    meta = globalconfig.generate(manifest)["meta"]
    assert meta["supportedPythonVersion"] == ["3.13"]
    assert meta["version"] == manifest["version"]
    assert (meta["name"], meta["restRoot"]) == ("TA-mde-ipstats", "ta_mde_ipstats")
