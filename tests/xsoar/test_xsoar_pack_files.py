"""The pack's declarations: generated from manifest.json, committed as generated, and consistent with
what the integration reads and writes and what the sample playbook uses."""

from __future__ import annotations

import ast
import json
import sys
from collections import deque
from pathlib import Path
from typing import Any

from xsoar_helpers import INTEGRATION_DIR, PACK, REPO

from connector.platforms.xsoar.packtools import integration_readme, integration_yml, logo

sys.path.insert(0, str(REPO / "playbooks" / "xsoar"))
import generate_playbook

MANIFEST = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))
DOCUMENT = integration_yml.integration()
PARAMS = {p["name"]: p for p in DOCUMENT["configuration"]}
COMMANDS = {c["name"]: c for c in DOCUMENT["script"]["commands"]}
COMMAND = COMMANDS["mde-get-ip-statistics"]


def integration_constant(name: str) -> Any:
    """A literal constant of MDEIPStatistics.py, read without importing it (it needs XSOAR's modules)."""
    tree = ast.parse((INTEGRATION_DIR / "MDEIPStatistics.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def test_committed_integration_yaml_is_the_generated_one() -> None:
    assert (INTEGRATION_DIR / "MDEIPStatistics.yml").read_text(encoding="utf-8") == integration_yml.render()


def test_committed_integration_readme_is_the_generated_one() -> None:
    text = (INTEGRATION_DIR / "README.md").read_text(encoding="utf-8")
    assert text == integration_readme.render()
    for output in COMMAND["outputs"]:
        assert f"| {output['contextPath']} |" in text
    assert "test-module" not in text  # an internal term to demisto-sdk (BA125)


def test_the_readme_examples_are_what_the_commands_answer_now() -> None:
    """command_examples.py --check: every line of command_examples.txt run again against the emulator gives
    the recorded answer (up to ports, codes, times and ages), and the README shows every recorded one."""
    import subprocess

    script = REPO / "connector" / "platforms" / "xsoar" / "packtools" / "command_examples.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (INTEGRATION_DIR / "README.md").read_text(encoding="utf-8")
    lines = [line for line in (INTEGRATION_DIR / "command_examples.txt").read_text().splitlines() if line.strip()]
    assert len(lines) >= 6
    for line in lines:
        assert f"#### Command example\n```{line}```" in text
    for heading in ("#### Base Command", "#### Input", "#### Context Output", "#### Context Example",
                    "#### Human Readable Output"):
        assert heading in text, heading
    assert "\n>### Authorization instructions\n>1. To sign in, use a web browser to open the page" in text
    assert "\n>✅ Authorization completed successfully." in text


def test_committed_logo_is_the_generated_one() -> None:
    committed = (INTEGRATION_DIR / "MDEIPStatistics_image.png").read_bytes()
    assert committed == logo.png()
    assert committed.startswith(b"\x89PNG") and len(committed) < 10_000


def test_committed_playbook_is_the_generated_one() -> None:
    assert generate_playbook.PATH.read_text(encoding="utf-8") == generate_playbook.render()


def test_every_manifest_field_is_a_parameter_or_inside_a_credentials_parameter() -> None:
    credentials = integration_constant("CREDENTIAL_PARAMS")
    xsoar_only = set(integration_constant("XSOAR_ONLY_PARAMS"))
    fields = set(MANIFEST["configuration"]["properties"])
    plain = {name for name in PARAMS if PARAMS[name]["type"] != 9}
    assert fields == (plain - xsoar_only) | set(credentials) | ({"proxy", "store_backend"} & fields)
    assert {param for param, _ in credentials.values()} == {n for n, p in PARAMS.items() if p["type"] == 9}
    required = set(MANIFEST["configuration"]["required"])
    assert {n for n, p in PARAMS.items() if p["required"]} == required


def test_every_manifest_field_is_shown_by_its_tier() -> None:
    """basic: open in Connect; advanced: behind "Show advanced" (Connect or Collect); testing: hidden. A field
    inside a credentials parameter (the thumbprint) shares its parameter's place."""
    credentials = integration_constant("CREDENTIAL_PARAMS")
    for name, prop in MANIFEST["configuration"]["properties"].items():
        param = PARAMS[credentials[name][0] if name in credentials else name]
        tier = prop["x-tier"]
        if tier == "basic":
            assert param["section"] == "Connect" and not param.get("advanced") and not param.get("hidden"), name
        elif tier == "advanced":
            assert param["advanced"] is True and not param.get("hidden"), name
            assert param["section"] in ("Connect", "Collect"), name
        else:
            assert tier == "testing" and param["hidden"] is True, name
    order = [MANIFEST["configuration"]["properties"][p["name"]]["x-tier"] for p in DOCUMENT["configuration"]
             if p["name"] in MANIFEST["configuration"]["properties"]]
    assert order == sorted(order, key=("basic", "advanced", "testing").index), "basics first"
    assert integration_yml.presentation("a_new_budget", "advanced") == {"section": "Collect", "advanced": True}


def test_secrets_are_credentials_parameters() -> None:
    secrets = {n for n, p in MANIFEST["configuration"]["properties"].items() if p.get("x-secret")}
    credentials = integration_constant("CREDENTIAL_PARAMS")
    assert secrets <= set(credentials)
    assert PARAMS["credentials"]["hiddenusername"] is True and PARAMS["credentials"]["displaypassword"]
    assert credentials["thumbprint"] == ("creds_certificate", "identifier")
    assert credentials["private_key"] == ("creds_certificate", "password")
    assert "hiddenusername" not in PARAMS["creds_certificate"]  # the identifier is the thumbprint
    assert not any("secret" in n or "key" in n for n, p in PARAMS.items() if p["type"] != 9)


def test_proxy_is_the_system_proxy_checkbox_and_tls_verification_cannot_be_switched_off() -> None:
    assert PARAMS["proxy"]["type"] == 8 and PARAMS["proxy"]["defaultvalue"] == "false"
    assert not {"insecure", "unsecure", "verify", "verify_ssl"} & set(PARAMS)


def test_xsoar_parameters_source_reliability_and_official_paths() -> None:
    reliability = PARAMS["integrationReliability"]
    assert reliability["type"] == 15 and reliability["defaultvalue"] in reliability["options"]
    assert PARAMS["official_context_paths"]["type"] == 8
    assert PARAMS["official_context_paths"]["defaultvalue"] == "false"
    assert PARAMS["store_backend"]["options"] == ["integration_context", "redis"]
    assert PARAMS["ca_bundle"]["type"] == 12  # PEM text is pasted
    for name in ("rare_device_threshold", "novelty_hours", "cache_ttl_s", "rate_limit_per_minute",
                 "rate_limit_per_hour"):
        default = MANIFEST["configuration"]["properties"][name]["default"]
        assert float(PARAMS[name]["defaultvalue"]) == default


def test_the_command_takes_a_list_of_ips_and_a_lookback_defaulting_to_720() -> None:
    assert COMMAND["name"] == "mde-get-ip-statistics"
    arguments = {a["name"]: a for a in COMMAND["arguments"]}
    assert arguments["ip"]["isArray"] is True and arguments["ip"]["default"] is True
    assert arguments["ip"]["required"] is True
    assert arguments["lookback_hours"]["defaultValue"] == "720"
    assert set(arguments) == set(MANIFEST["actions"]["get_ip_statistics"]["input"]["properties"])


def test_every_parameter_has_a_display_name_xsoar_accepts() -> None:
    """demisto-sdk validate's IN135: a display name starts with a capital letter and has no underscore (a
    field without a DISPLAY entry falls back to its description, which may name other fields)."""
    for name, param in PARAMS.items():
        display = param.get("display") or ""
        if param.get("type") in (9,) and not display:  # a credentials pair shows its own labels
            continue
        assert display[:1].isupper() and "_" not in display, (name, display)


def test_outputs_are_the_declared_context_paths() -> None:
    paths = {o["contextPath"] for o in COMMAND["outputs"]}
    mde = {p.removeprefix("MDE.IPStatistics.") for p in paths if p.startswith("MDE.IPStatistics.")}
    assert mde == {"IPAddress", "OrganizationPrevalence", "OrgPrevalence", "OrgFirstSeen", "OrgLastSeen", "SeenInOrg",
                   "LookBackHours", "Verdict", "IPScope", "NewInWindow", "Cached", "CacheAgeSeconds", "Warnings",
                   "Lane", "LaneWaitSeconds"}
    assert {"IP.Address", "IP.OrganizationPrevalence", "IP.OrganizationFirstSeen", "IP.OrganizationLastSeen",
            "DBotScore.Score", "DBotScore.Reliability", "MicrosoftATP.IPStatistics.IPAddress",
            "MicrosoftATP.IPStatistics.Statistics.OrgPrevalence", "MicrosoftATP.IPStatistics.Statistics.OrgFirstSeen",
            "MicrosoftATP.IPStatistics.Statistics.OrgLastSeen"} <= paths
    assert all(o["type"] in ("String", "Number", "Date", "Boolean") for o in COMMAND["outputs"])


def test_the_sign_in_commands_are_declared_for_delegated_access() -> None:
    handled = integration_constant("SIGN_IN_COMMANDS")
    assert set(COMMANDS) == {"mde-get-ip-statistics", *handled}
    assert set(handled) == {"mde-auth-start", "mde-auth-complete", "mde-auth-test", "mde-auth-reset"}
    assert set(handled.values()) <= set(MANIFEST["actions"])
    for name in ("mde-auth-start", "mde-auth-complete", "mde-auth-reset"):
        assert {o["contextPath"] for o in COMMANDS[name]["outputs"]} == {
            f"MDE.SignIn.{key}" for key in ("State", "User", "VerificationURI", "UserCode", "ExpiresAt")}
    assert [a["name"] for a in COMMANDS["mde-auth-complete"]["arguments"]] == ["wait_s"]
    assert PARAMS["auth_mode"]["options"] == ["application", "delegated", "managed_identity"]
    assert not PARAMS["auth_mode"].get("hidden")


def test_every_description_ends_with_a_dot() -> None:
    """demisto-sdk's DS108, checked here so that a manifest change cannot break the package build."""
    texts = [c["description"] for c in COMMANDS.values()]
    texts += [a["description"] for c in COMMANDS.values() for a in c["arguments"]]
    texts += [o["description"] for c in COMMANDS.values() for o in c.get("outputs", [])]
    assert [t for t in texts if not t.rstrip().endswith(".")] == []


def test_the_yaml_names_the_docker_image_of_this_version() -> None:
    assert DOCUMENT["script"]["dockerimage"] == f"mde-ipstats/xsoar:{MANIFEST['version']}"
    assert DOCUMENT["script"]["subtype"] == "python3" and DOCUMENT["script"]["script"] == ""


def test_pack_metadata_has_what_the_marketplace_requires() -> None:
    metadata = json.loads((PACK / "pack_metadata.json").read_text(encoding="utf-8"))
    for field in ("name", "description", "support", "currentVersion", "author", "categories", "tags", "useCases",
                  "keywords", "marketplaces"):
        assert metadata.get(field), field
    # A new pack, as the content repository takes one: version 1.0.0 and no release notes (the first
    # version's notes are the pack README); community support; XSOAR and XSIAM (the integration and the
    # playbook use nothing marketplace-specific).
    assert metadata["currentVersion"] == "1.0.0"
    assert not (PACK / "ReleaseNotes").exists()
    assert metadata["support"] == "community"
    assert metadata["marketplaces"] == ["xsoar", "marketplacev2", "platform"]  # the SDK pairs v2 with platform (BA130)
    for required_file in (".secrets-ignore", ".pack-ignore", "README.md"):
        assert (PACK / required_file).is_file()


# --- the sample playbook --------------------------------------------------------------------------

PLAYBOOK = generate_playbook.playbook()


def context_paths_read(value: Any) -> set[str]:
    """Every context path a task reads: complex roots with their accessors, context-valued operands."""
    found: set[str] = set()
    if isinstance(value, dict):
        complex_value = value.get("complex")
        if isinstance(complex_value, dict):
            root, accessor = complex_value["root"], complex_value.get("accessor")
            found.add(f"{root}.{accessor}" if accessor else root)
        if value.get("iscontext") and isinstance(value.get("value"), dict) and "simple" in value["value"]:
            found.add(value["value"]["simple"])
        for item in value.values():
            found |= context_paths_read(item)
    elif isinstance(value, list):
        for item in value:
            found |= context_paths_read(item)
    return found


def test_playbook_graph_starts_once_and_reaches_every_task() -> None:
    tasks = PLAYBOOK["tasks"]
    seen, queue = set(), deque([PLAYBOOK["starttaskid"]])
    while queue:
        task = queue.popleft()
        if task in seen:
            continue
        seen.add(task)
        for targets in tasks[task].get("nexttasks", {}).values():
            assert set(targets) <= set(tasks)
            queue.extend(targets)
    assert seen == set(tasks)
    assert [t["type"] for t in tasks.values()].count("start") == 1


def test_playbook_calls_only_declared_commands_with_declared_arguments() -> None:
    declared = {c["name"]: {a["name"] for a in c["arguments"]} for c in DOCUMENT["script"]["commands"]}
    command_tasks = [t for t in PLAYBOOK["tasks"].values() if t["task"].get("iscommand")]
    assert command_tasks, "the playbook calls the integration"
    for task in command_tasks:
        command = task["task"]["script"].split("|||")[-1]
        assert command in declared
        assert set(task.get("scriptarguments", {})) <= declared[command]
    scripts = {t["task"]["script"] for t in PLAYBOOK["tasks"].values()
               if "script" in t["task"] and not t["task"].get("iscommand")}
    assert scripts <= {"Set"}  # only XSOAR's built-in Set script besides the integration


def test_playbook_reads_only_declared_outputs_and_its_own_inputs() -> None:
    declared = {o["contextPath"] for o in COMMAND["outputs"]}
    inputs = {f"inputs.{i['key']}" for i in PLAYBOOK["inputs"]}
    read = set()
    for task in PLAYBOOK["tasks"].values():
        read |= context_paths_read({k: v for k, v in task.items() if k in ("scriptarguments", "conditions")})
    for playbook_input in PLAYBOOK["inputs"]:
        read |= context_paths_read(playbook_input["value"])
    assert "MDE.IPStatistics.Verdict" in read and "MDE.IPStatistics.IPAddress" in read
    undeclared = {path for path in read - inputs if not any(path == d or d.startswith(path + ".") for d in declared)}
    assert undeclared == set()


def test_playbook_branches_on_every_verdict_the_core_gives() -> None:
    verdicts = MANIFEST["actions"]["get_ip_statistics"]["output"]["$defs"]["IpStatistics"]["properties"]["verdict"]
    conditions = [t for t in PLAYBOOK["tasks"].values() if t["type"] == "condition"]
    branched = {c["conditions"][0]["condition"][0][0]["right"]["value"]["simple"] for c in conditions}
    assert branched == set(verdicts["enum"])
    for condition in conditions:
        assert context_paths_read(condition["conditions"]) == {"MDE.IPStatistics.Verdict"}
    command_task = next(t for t in PLAYBOOK["tasks"].values() if t["task"].get("iscommand"))
    assert command_task["continueonerror"] is True  # one failed IP does not stop the others
    assert set(command_task["nexttasks"]["#none#"]) == {t["id"] for t in conditions}


def test_playbook_file_is_read_as_written() -> None:
    text = Path(generate_playbook.PATH).read_text(encoding="utf-8")
    assert "|||mde-get-ip-statistics" in text and "MDE.IPStatistics" in text
