"""The ARM templates, checked offline: the deployment template schema (draft-04, with jsonschema), the rules
Azure-Sentinel's CI applies to playbooks, the workflow's own references, and the body the playbook sends,
built from the template's expressions and fed to the Function."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connector.manifest import load_manifest
from emulator import Emulator

from .helpers import call, verdicts
from .workflow import Run, actions, expressions, referenced_actions, referenced_parameters

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "sentinel" / "azuredeploy.json"
FUNCTION_APP = ROOT / "playbooks" / "sentinel" / "function-app" / "azuredeploy.json"
SCHEMA = Path(__file__).with_name("arm_template_schema.json")
ENTITY_KINDS = {"account", "host", "ip", "url", "azureresource", "cloudapplication", "dnsresolution", "file",
                "filehash", "hostlogonsession", "iotdevice", "malware", "networkconnection", "process", "registrykey",
                "registryvalue", "securitygroup", "mailbox", "mailcluster", "mailmessage", "submissionmail"}
CALL = "Call_MDE_IP_statistics"


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def workflow(template: dict[str, Any]) -> dict[str, Any]:
    [logic] = [r for r in template["resources"] if r["type"] == "Microsoft.Logic/workflows"]
    return logic


@pytest.mark.parametrize("path", [PLAYBOOK, FUNCTION_APP], ids=["playbook", "function-app"])
def test_the_template_is_valid_against_the_draft_04_deployment_template_schema(path: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(load(path))


def test_the_schema_refuses_what_azure_sentinels_ci_refuses() -> None:
    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()))
    good = load(PLAYBOOK)
    for broken in ({**good, "contentVersion": "1.0"}, {**good, "extra": {}},
                   {k: v for k, v in good.items() if k != "resources"},
                   {**good, "resources": [{"type": "Microsoft.Web/connections"}]},
                   {**good, "parameters": {"X": {"type": "text"}}}):
        assert not validator.is_valid(broken)


def test_the_playbook_follows_the_azure_sentinel_playbook_rules() -> None:
    template = load(PLAYBOOK)
    assert "PlaybookName" in template["parameters"]
    logic = workflow(template)
    assert logic["name"] == "[parameters('PlaybookName')]"
    assert logic["location"] == "[resourceGroup().location]"
    assert logic["identity"] == {"type": "SystemAssigned"}
    assert " " not in logic["tags"]["hidden-SentinelTemplateName"]
    assert logic["tags"]["hidden-SentinelTemplateVersion"] == "1.0"
    connections = [r for r in template["resources"] if r["type"] == "Microsoft.Web/connections"]
    assert connections
    for connection in connections:
        variable = re.fullmatch(r"\[variables\('([^']+)'\)\]", connection["name"])
        assert variable and variable.group(1) in template["variables"]
        assert f"[resourceId('Microsoft.Web/connections', variables('{variable.group(1)}'))]" in logic["dependsOn"]
    sentinel = logic["properties"]["parameters"]["$connections"]["value"]["azuresentinel"]
    assert sentinel["connectionProperties"] == {"authentication": {"type": "ManagedServiceIdentity"}}
    metadata = template["metadata"]
    assert metadata["title"] and metadata["description"] and metadata["author"]["name"]
    assert metadata["support"]["tier"] in ("microsoft", "community", "developer")
    datetime.fromisoformat(metadata["lastUpdateTime"].replace("Z", "+00:00"))
    assert {e.lower() for e in metadata["entities"]} <= ENTITY_KINDS
    assert (PLAYBOOK.parent / metadata["prerequisitesDeployTemplateFile"]).is_file()


def test_every_run_after_and_reference_names_an_action_and_every_parameter_is_declared() -> None:
    definition = workflow(load(PLAYBOOK))["properties"]["definition"]
    found = list(actions(definition["actions"]))
    names = [name for _, name, _ in found]
    assert len(names) == len(set(names)), "action names are unique across the workflow"
    by_scope: dict[tuple[str, ...], set[str]] = {}
    for path, name, _ in found:
        by_scope.setdefault(path, set()).add(name)
    for path, name, action in found:
        assert set(action["runAfter"]) <= by_scope[path], f"{name} runs after an action outside its scope"
        for statuses in action["runAfter"].values():
            assert set(statuses) <= {"Succeeded", "Failed", "Skipped", "TimedOut"}
        for text in expressions(action):
            assert referenced_actions(text) <= set(names), f"{name}: {text}"
            assert referenced_parameters(text) <= set(definition["parameters"]), f"{name}: {text}"
    assert any(text for _, _, a in found for text in expressions(a) if "body('Entities_-_Get_IPs')" in text)
    declared = set(definition["parameters"])
    given = set(workflow(load(PLAYBOOK))["properties"]["parameters"])
    assert given == declared, "every workflow parameter gets its value from the template"


def test_the_http_call_retries_429s_and_5xx_and_hides_its_key_in_run_history() -> None:
    definition = workflow(load(PLAYBOOK))["properties"]["definition"]
    action = {name: a for _, name, a in actions(definition["actions"])}[CALL]
    assert action["type"] == "Http" and action["inputs"]["method"] == "POST"
    policy = action["inputs"]["retryPolicy"]
    assert policy["type"] == "exponential" and 1 <= policy["count"] <= 90
    for key in ("interval", "minimumInterval", "maximumInterval"):
        assert re.fullmatch(r"PT\d+[SM]", policy[key]), key
    assert action["inputs"]["headers"]["x-functions-key"] == "@parameters('FunctionKey')"
    assert definition["parameters"]["FunctionKey"]["type"] == "SecureString"
    assert action["runtimeConfiguration"]["secureData"]["properties"] == ["inputs"]


def sample_run(template: dict[str, Any], entities: list[dict[str, Any]]) -> Run:
    """A run of the playbook on an incident whose Entities - Get IPs output is ``entities``; the
    template's workflow parameters resolved as ARM would (its defaults), the Function's URL and key given."""
    arm_defaults = {name: spec.get("defaultValue") for name, spec in template["parameters"].items()}
    given = workflow(template)["properties"]["parameters"]
    resolved = {}
    for name, value in given.items():
        match = re.fullmatch(r"\[parameters\('([^']+)'\)\]", json.dumps(value["value"]).strip('"'))
        resolved[name] = arm_defaults[match.group(1)] if match else value["value"]
    resolved.update(FunctionUrl="https://func-mde.azurewebsites.net/api/ipstats", FunctionKey="key")
    trigger = {"object": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/"
                                "workspaces/w/providers/Microsoft.SecurityInsights/Incidents/i-1",
                          "properties": {"relatedEntities": []}}}
    run = Run(trigger, resolved)
    run.bodies["Entities_-_Get_IPs"] = {"IPs": entities}
    return run


def test_the_body_the_playbook_builds_is_what_the_function_accepts(function_app: Emulator) -> None:
    template = load(PLAYBOOK)
    definition = workflow(template)["properties"]["definition"]
    by_name = {name: a for _, name, a in actions(definition["actions"])}
    entities = [{"Address": "10.209.67.177", "Type": "ip", "friendlyName": "10.209.67.177"},
                {"Address": "[2001:db8::9]:443", "Type": "ip"}, {"Address": "203.0.113.5:8080", "Type": "ip"}]
    run = sample_run(template, entities)
    condition = definition["actions"]["Condition_-_the_incident_has_IP_entities"]["expression"]["and"][0]["greater"]
    assert run.evaluate(condition[0]) > condition[1]
    request = run.evaluate(by_name[CALL]["inputs"])
    assert request["uri"] == "https://func-mde.azurewebsites.net/api/ipstats"
    body = json.loads(json.dumps(request["body"]))  # exactly what goes on the wire
    assert body == {"IPs": entities, "lookback_hours": 720}
    status, answer = call(body)
    assert status == 200
    assert verdicts(answer) == {"10.209.67.177": "common", "2001:db8::9": "not_seen", "203.0.113.5": "not_seen"}
    run.bodies[CALL] = answer
    comment = run.evaluate(by_name["Add_comment_to_incident_(V3)"]["inputs"]["body"])
    assert comment["incidentArmId"].endswith("/Incidents/i-1") and comment["message"] == answer["comment_html"]
    tags_condition = by_name["Condition_-_tags_to_add"]["expression"]["and"][0]["greater"]
    assert run.evaluate(tags_condition[0]) > tags_condition[1]
    selected = [run.evaluate_item(by_name["Select_tags"]["inputs"]["select"], item)
                for item in run.evaluate(by_name["Select_tags"]["inputs"]["from"])]
    assert selected == [{"Tag": "mde-not-seen"}]
    run.bodies["Select_tags"] = selected
    update = run.evaluate(by_name["Update_incident"]["inputs"]["body"])
    assert update["tagsToAdd"] == {"TagsToAdd": [{"Tag": "mde-not-seen"}]}


def test_an_incident_without_ip_entities_does_not_call_the_function() -> None:
    template = load(PLAYBOOK)
    definition = workflow(template)["properties"]["definition"]
    condition = definition["actions"]["Condition_-_the_incident_has_IP_entities"]
    assert CALL in condition["actions"] and condition["else"]["actions"] == {}
    left, right = condition["expression"]["and"][0]["greater"]
    assert not sample_run(template, []).evaluate(left) > right


def test_the_function_app_has_its_own_identity_and_app_settings_the_function_reads() -> None:
    template = load(FUNCTION_APP)
    [site] = [r for r in template["resources"] if r["type"] == "Microsoft.Web/sites"]
    assert site["identity"] == {"type": "SystemAssigned"} and site["kind"] == "functionapp,linux"
    assert site["properties"]["siteConfig"]["linuxFxVersion"] == "Python|3.11"
    assert site["properties"]["siteConfig"]["functionAppScaleLimit"] == "[parameters('MaximumInstances')]"
    assert template["parameters"]["MaximumInstances"]["defaultValue"] == 1
    [config] = [r for r in template["resources"] if r["type"] == "Microsoft.Web/sites/config"]
    settings = config["properties"]
    assert settings["MDE_AUTH_MODE"] == "managed_identity" and settings["MDE_TENANT_ID"] == "[subscription().tenantId]"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python" and settings["SCM_DO_BUILD_DURING_DEPLOYMENT"] == "false"
    fields = set(load_manifest()["configuration"]["properties"])
    assert {name.removeprefix("MDE_").lower() for name in settings if name.startswith("MDE_")} <= fields
    assert not any("secret" in name.lower() or "private_key" in name.lower() for name in settings)
    assert "PrincipalId" in template["outputs"]
