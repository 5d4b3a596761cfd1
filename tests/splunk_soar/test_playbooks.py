"""The sample playbooks read only data paths the app declares, and the enrichment playbook triages
real results (from the SDK runner against the emulator) as it promises, failures included."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from soar_helpers import APP_DIR, PLAYBOOKS, REPO, SoarRunner

PLAYBOOK_FILES = sorted(PLAYBOOKS.glob("*.py"))
SAMPLE_ALERT = json.loads((REPO / "playbooks" / "sample_alert.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def app_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Action name -> declared data paths, from the generated Splunk SOAR app JSON."""
    out = tmp_path_factory.mktemp("pb") / "app.json"
    wrapper = str(APP_DIR / "tools" / "soarapps_wrapper.py")  # the build's SDK override (see its docstring)
    done = subprocess.run([sys.executable, wrapper, "manifests", "create", str(out), "."],
                          cwd=APP_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    app = json.loads(out.read_text(encoding="utf-8"))
    return {a["action"]: {o["data_path"] for o in a["output"]} for a in app["actions"]}


def module_constants(tree: ast.Module) -> dict[str, Any]:
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return constants


def fold(node: ast.AST, constants: dict[str, Any]) -> Any:
    """The value of a constant expression: literals, module constants and f-strings of them."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                parts.append(str(fold(value.value, constants)))
            else:
                parts.append(str(fold(value, constants)))
        return "".join(parts)
    raise ValueError(ast.dump(node))


def playbook_facts(path: Path) -> tuple[dict[str, str], list[str]]:
    """(block name -> action name of each phantom.act, every action_result path the playbook reads)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = module_constants(tree)
    blocks: dict[str, str] = {}
    paths: list[str] = []
    fstring_parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    for node in ast.walk(tree):
        if id(node) in fstring_parts:
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "act":
            action = fold(node.args[0], constants)
            name = next(fold(k.value, constants) for k in node.keywords if k.arg == "name")
            blocks[name] = action
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            try:
                value = fold(node, constants)
            except ValueError:
                continue
            if isinstance(value, str) and ":action_result." in value:
                paths.append(value)
    return blocks, paths


def test_there_are_two_sample_playbooks() -> None:
    assert {p.name for p in PLAYBOOK_FILES} == {"defender_ip_prevalence_enrichment.py",
                                                "defender_ip_prevalence_single.py"}


@pytest.mark.parametrize("playbook", PLAYBOOK_FILES, ids=lambda p: p.stem)
def test_every_data_path_a_playbook_reads_is_declared_by_the_app(playbook: Path,
                                                                 app_outputs: dict[str, set[str]]) -> None:
    blocks, paths = playbook_facts(playbook)
    assert blocks, "the playbook runs no action"
    assert len(paths) >= 6
    for action in blocks.values():
        assert action in app_outputs, f"{action!r} is not an action of the app"
    for full in paths:
        block, path = full.split(":", 1)
        assert block in blocks, f"{full}: no phantom.act named {block!r}"
        assert path in app_outputs[blocks[block]], f"{full} is not declared by {blocks[block]!r}"


def test_the_path_check_would_catch_an_undeclared_path(app_outputs: dict[str, set[str]]) -> None:
    assert "action_result.data.*.organizationPrevalance" not in app_outputs["get ip statistics"]
    assert "action_result.data.*.organizationPrevalence" in app_outputs["get ip statistics"]


# --- the enrichment playbook, run with a recording stand-in for phantom.rules -------------------------

def resolve_path(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    head, rest = parts[0], parts[1:]
    if head == "*":
        return resolve_path(node[0], rest) if node else None
    if not isinstance(node, dict):
        return None
    return resolve_path(node.get(head), rest)


class FakePhantom:
    """Records what the playbook does; collect2 reads the sample alert and real action results."""

    def __init__(self, artifacts: list[dict[str, Any]]) -> None:
        self.artifacts = artifacts
        self.acts: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.tags: list[str] = []
        self.severities: list[str] = []

    def module(self) -> types.ModuleType:
        rules = types.ModuleType("phantom.rules")
        rules.debug = lambda *a, **k: None  # type: ignore[attr-defined]
        rules.error = lambda *a, **k: None  # type: ignore[attr-defined]
        rules.collect2 = self.collect2  # type: ignore[attr-defined]
        rules.act = lambda action, **kw: self.acts.append({"action": action, **kw})  # type: ignore[attr-defined]
        rules.add_note = lambda **kw: self.notes.append(kw)  # type: ignore[attr-defined]
        rules.add_tags = lambda container=None, tags=None: self.tags.extend(tags)  # type: ignore[attr-defined]
        rules.set_severity = lambda container=None, severity=None: self.severities.append(severity)  # type: ignore[attr-defined]
        return rules

    def collect2(self, container: Any = None, datapath: list[str] = (), action_results: Any = None,
                 **kwargs: Any) -> list[list[Any]]:
        if all(p.startswith("artifact:") for p in datapath):
            return [[resolve_path(a, p.split(":", 1)[1].split(".")[1:]) for p in datapath] for a in self.artifacts]
        rows = []
        for result in action_results or []:
            doc = {"action_result": {"parameter": result.params, "status": result.status,
                                     "message": result.message, "data": result.data, "summary": result.summary}}
            rows.append([resolve_path(doc, p.split(":", 1)[1].split(".")) for p in datapath])
        return rows


def load_playbook(fake: FakePhantom, name: str = "defender_ip_prevalence_enrichment.py") -> types.ModuleType:
    phantom_pkg = types.ModuleType("phantom")
    rules = fake.module()
    phantom_pkg.rules = rules  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("phantom", "phantom.rules")}
    sys.modules["phantom"], sys.modules["phantom.rules"] = phantom_pkg, rules
    try:
        source = PLAYBOOKS / name
        spec = importlib.util.spec_from_file_location(f"pb_{source.stem}", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


def run_enrichment(runner: SoarRunner, asset: Path) -> tuple[FakePhantom, list[str], Any]:
    fake = FakePhantom(SAMPLE_ALERT["artifacts"])
    playbook = load_playbook(fake)
    container = dict(SAMPLE_ALERT["container"], id=1)
    playbook.on_start(container)
    [act] = fake.acts
    ips = [p["ip"] for p in act["parameters"]]
    out = runner.run("get-ip-statistics", asset, {"ip": ", ".join(ips), "lookback_hours": 720})
    assert len(out.results) == len(ips), out.stderr
    act["results"] = out.results  # kept for the tests' own expectations
    act["callback"](action=act["action"], success=True, container=container, results=out.results)
    return fake, ips, playbook


def test_enrichment_looks_up_each_distinct_ip_once_for_720_hours(emu: Any, runner: SoarRunner,
                                                                  asset_file: Path) -> None:
    fake, ips, _ = run_enrichment(runner, asset_file)
    cef_ips = {v for a in SAMPLE_ALERT["artifacts"] for k, v in a["cef"].items() if k.endswith("Address")}
    assert sorted(ips) == sorted(cef_ips) and len(ips) == len(set(ips)) < sum(
        1 for a in SAMPLE_ALERT["artifacts"] for k in a["cef"] if k.endswith("Address"))
    assert any(":" in ip for ip in ips)  # IPv6 included
    assert fake.acts[0]["action"] == "get ip statistics"
    assert {p["lookback_hours"] for p in fake.acts[0]["parameters"]} == {720}


SCOPE_NOTE_WORDS = {"private": "private address", "public": "public address", "reserved": "reserved address"}
VERDICT_NOTE_WORDS = {"not_seen": "not seen in the organization", "rare": "is rare in the organization",
                      "common": "is common in the organization"}


def test_enrichment_notes_and_tags_follow_the_app_verdict_scope_and_novelty(emu: Any, runner: SoarRunner,
                                                                            asset_file: Path) -> None:
    fake, ips, playbook = run_enrichment(runner, asset_file)
    assert not hasattr(playbook, "RARE_DEVICE_THRESHOLD")  # the asset's threshold, applied by the core
    results = fake.acts[0]["results"]
    by_ip = {r.params["ip"]: r for r in results}
    # The app's verdicts agree with Defender's figures at the asset's default threshold (5 devices).
    for ip, result in by_ip.items():
        devices = emu.org.stats_detail(ip, 720, None).prevalence
        assert result.summary["verdict"] == ("not_seen" if devices == 0 else "rare" if devices <= 5 else "common")
    assert {r.summary["verdict"] for r in results} == {"not_seen", "rare", "common"}  # the sample has all three
    assert len(fake.notes) == len(ips)
    for ip, result in by_ip.items():
        [note] = [n for n in fake.notes if f"{ip} (" in n["title"]]
        assert VERDICT_NOTE_WORDS[result.summary["verdict"]] in note["title"], note
        assert SCOPE_NOTE_WORDS[result.summary["ip_scope"]] in note["title"], note
    expected_tags = {"defender-not-seen-in-org", "defender-rare-ip"}
    if any(r.data[0]["newInWindow"] for r in results):
        expected_tags.add("defender-new-in-window")
    assert sorted(fake.tags) == sorted(expected_tags)
    assert fake.severities == ["high"]


def test_enrichment_tags_an_ip_new_in_the_window(emu: Any, runner: SoarRunner, asset_file: Path) -> None:
    """newInWindow comes from the app's answer: with a novelty window of 719 h nearly every seen IP is new."""
    config = json.loads(asset_file.read_text(encoding="utf-8"))
    wide = asset_file.with_name("novelty-wide.json")
    wide.write_text(json.dumps(config | {"novelty_hours": 719, "cache_ttl_s": 0}), encoding="utf-8")
    fake, _, _ = run_enrichment(runner, wide)
    seen = [r for r in fake.acts[0]["results"] if r.summary["verdict"] != "not_seen"]
    assert all(r.data[0]["newInWindow"] is (r.data[0]["firstSeenAgeHours"] <= 719) for r in seen)
    new = [r.params["ip"] for r in seen if r.data[0]["newInWindow"]]
    assert new and "defender-new-in-window" in fake.tags
    for ip in new:
        [note] = [n for n in fake.notes if f"{ip} (" in n["title"]]
        assert "tagged `defender-new-in-window`" in note["content"], note


def test_enrichment_uses_the_asset_threshold_not_one_of_its_own(emu: Any, runner: SoarRunner,
                                                                asset_file: Path) -> None:
    config = json.loads(asset_file.read_text(encoding="utf-8"))
    lenient = asset_file.with_name("threshold-high.json")
    lenient.write_text(json.dumps(config | {"rare_device_threshold": 1_000_000, "cache_ttl_s": 0}), encoding="utf-8")
    fake, _, _ = run_enrichment(runner, lenient)
    assert not [n for n in fake.notes if "is common" in n["title"]]
    assert [n for n in fake.notes if "is rare" in n["title"]]
    assert "defender-rare-ip" in fake.tags


def test_failed_lookups_become_notes_with_the_error_category(runner: SoarRunner,
                                                             wrong_secret_asset: Path) -> None:
    fake, ips, _ = run_enrichment(runner, wrong_secret_asset)
    assert len(fake.notes) == len(ips)
    assert all(n["title"].startswith("Defender lookup failed") for n in fake.notes)
    assert all("(authentication)" in n["title"] for n in fake.notes), [n["title"] for n in fake.notes]
    scopes = {r.params["ip"]: r.summary["ip_scope"] for r in fake.acts[0]["results"]}
    for ip, scope in scopes.items():
        [note] = [n for n in fake.notes if f"for {ip} (" in n["title"]]
        assert f"{SCOPE_NOTE_WORDS[scope]}." in note["content"], note
    assert fake.tags == [] and fake.severities == []


# --- the analyst's single-IP playbook --------------------------------------------------------------

def run_single(runner: SoarRunner, asset: Path, ip: str) -> FakePhantom:
    fake = FakePhantom([])
    fake.playbook_input = ip  # type: ignore[attr-defined]
    collect = fake.collect2

    def collect2(container: Any = None, datapath: list[str] = (), **kwargs: Any) -> list[list[Any]]:
        if list(datapath) == ["playbook_input:ip"]:
            return [[ip]]
        return collect(container=container, datapath=datapath, **kwargs)

    fake.collect2 = collect2  # type: ignore[method-assign]
    playbook = load_playbook(fake, "defender_ip_prevalence_single.py")
    assert not hasattr(playbook, "RARE_DEVICE_THRESHOLD")
    playbook.on_start({"id": 1})
    [act] = fake.acts
    out = runner.run("get-ip-statistics", asset, act["parameters"][0])
    act["callback"](action=act["action"], success=True, container={"id": 1}, results=out.results)
    return fake


def test_single_ip_note_gives_verdict_scope_and_novelty(emu: Any, runner: SoarRunner, asset_file: Path) -> None:
    common = emu.org.most_popular(1)[0]
    [note] = run_single(runner, asset_file, common).notes
    assert note["title"].startswith(f"Defender: {common} (private address) is common in the organization (")
    never = next(ip for ip in emu.org.sample_ips(5, seen=False) if ":" not in ip)
    [note] = run_single(runner, asset_file, never).notes
    assert "not seen in the organization" in note["title"] and "address)" in note["title"]


def test_single_ip_failure_note_names_category_and_scope(runner: SoarRunner, wrong_secret_asset: Path) -> None:
    [note] = run_single(runner, wrong_secret_asset, "10.20.30.40").notes
    assert note["title"] == "Defender lookup failed for 10.20.30.40 (authentication; private address)"
