"""The sample XSOAR playbook, written from this description: python playbooks/xsoar/generate_playbook.py --write

"MDE IP Prevalence Enrichment" looks up every IP of the incident with one mde-get-ip-statistics call
(the argument is an array), then follows three branches in parallel, one per verdict the core gives
(MDE.IPStatistics.Verdict: not_seen, rare, common), each keeping the matching addresses in the
playbook's outputs. A failed IP is an error entry; the task continues on error so that the other IPs
still reach the branches. A test checks that every task calls a declared command with declared
arguments and reads only declared outputs; the committed YAML must equal what this file writes.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "connector" / "platforms" / "xsoar" / "packtools"))
from generated import generator_main  # type: ignore[import-not-found]  # noqa: E402
from yaml_text import dump  # type: ignore[import-not-found]  # noqa: E402

PLAYBOOK_ID = "MDE IP Prevalence Enrichment"
PATH = HERE / "MDE_IP_Prevalence_Enrichment.yml"
COMMAND = "mde-get-ip-statistics"
BRANCHES = {  # verdict -> (condition task, keep task, output key, what it means)
    "not_seen": ("2", "5", "MDEPrevalence.NeverSeen", "never seen on any device in the look-back window"),
    "rare": ("3", "6", "MDEPrevalence.Rare", "seen on at most rare_device_threshold devices"),
    "common": ("4", "7", "MDEPrevalence.Common", "seen on more devices than that"),
}
DONE = "8"


def _task_id(task: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mde-ipstats/xsoar/playbook/{task}"))


def _view(x: int, y: int) -> str:
    return json.dumps({"position": {"x": x, "y": y}})


def _task(task: str, kind: str, name: str, description: str, nexttasks: dict[str, list[str]] | None,
          x: int, y: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": _task_id(task), "version": -1, "name": name, "description": description}
    inner = extra.pop("inner", {})
    body.update(inner)
    task_doc: dict[str, Any] = {"id": task, "taskid": _task_id(task), "type": kind, "task": body}
    if nexttasks:
        task_doc["nexttasks"] = nexttasks
    task_doc.update(extra)
    task_doc.update({"separatecontext": False, "view": _view(x, y), "note": False, "timertriggers": [],
                     "ignoreworker": False, "skipunavailable": False, "quietmode": 0})
    return task_doc


def _verdict_is(verdict: str) -> dict[str, Any]:
    return {"operator": "isEqualString",
            "left": {"value": {"simple": "MDE.IPStatistics.Verdict"}, "iscontext": True},
            "right": {"value": {"simple": verdict}}}


def playbook() -> dict[str, Any]:
    tasks: dict[str, Any] = {
        "0": _task("0", "start", "", "", {"#none#": ["1"]}, 450, 50,
                   inner={"iscommand": False, "brand": ""}),
        "1": _task("1", "regular", "Organization prevalence of every IP (Defender for Endpoint)",
                   "One call for all the incident's IPs; a failed IP is an error entry, the others are answered.",
                   {"#none#": [branch[0] for branch in BRANCHES.values()]}, 450, 200,
                   inner={"script": f"|||{COMMAND}", "type": "regular", "iscommand": True, "brand": ""},
                   scriptarguments={"ip": {"complex": {"root": "inputs.IP"}},
                                    "lookback_hours": {"complex": {"root": "inputs.LookbackHours"}}},
                   continueonerror=True),
        DONE: _task(DONE, "title", "Done", "", None, 450, 900, inner={"type": "title", "iscommand": False,
                                                                        "brand": ""}),
    }
    for index, (verdict, (check, keep, output, meaning)) in enumerate(BRANCHES.items()):
        x = 50 + 400 * index
        tasks[check] = _task(
            check, "condition", f"Any IP {verdict}?", f"Is any IP {meaning}?", {"yes": [keep], "#default#": [DONE]},
            x, 400, inner={"type": "condition", "iscommand": False, "brand": ""},
            conditions=[{"label": "yes", "condition": [[{
                "operator": "containsGeneral",
                "left": {"value": {"complex": {"root": "MDE.IPStatistics", "accessor": "Verdict"}},
                         "iscontext": True},
                "right": {"value": {"simple": verdict}}}]]}])
        tasks[keep] = _task(
            keep, "regular", f"Keep the {verdict} IPs", f"The IPs {meaning}, in {output}.", {"#none#": [DONE]},
            x, 650, inner={"script": "Set", "type": "regular", "iscommand": False, "brand": ""},
            scriptarguments={"key": {"simple": output},
                             "value": {"complex": {"root": "MDE.IPStatistics", "filters": [[_verdict_is(verdict)]],
                                                   "accessor": "IPAddress"}}})
    return {
        "id": PLAYBOOK_ID,
        "version": -1,
        "name": PLAYBOOK_ID,
        "description": "Looks up the organization prevalence of every IP of the incident in Microsoft Defender for "
                       "Endpoint (MDE IP Statistics) and sorts the addresses by verdict: never seen, rare, common.",
        "starttaskid": "0",
        "tasks": dict(sorted(tasks.items(), key=lambda item: int(item[0]))),
        "view": json.dumps({"linkLabelsPosition": {}, "paper": {"dimensions": {"height": 915, "width": 1260,
                                                                                "x": 50, "y": 50}}}),
        "inputs": [
            {"key": "IP", "value": {"complex": {"root": "IP", "accessor": "Address"}}, "required": False,
             "description": "The IP addresses to look up (by default every IP of the incident).",
             "playbookInputQuery": None},
            {"key": "LookbackHours", "value": {"simple": "720"}, "required": False,
             "description": "Look-back window in hours (1 to 720).", "playbookInputQuery": None},
        ],
        "outputs": [{"contextPath": output, "description": f"IPs {meaning}.", "type": "String"}
                    for output, meaning in ((b[2], b[3]) for b in BRANCHES.values())],
        "tests": ["No tests (auto formatted)"],
        "fromversion": "6.10.0",
    }


def render() -> str:
    return "# Generated by playbooks/xsoar/generate_playbook.py: do not edit.\n" + dump(playbook())


def main(argv: list[str] | None = None) -> int:
    return generator_main(PATH, render, "the sample XSOAR playbook", argv)


if __name__ == "__main__":
    sys.exit(main())
