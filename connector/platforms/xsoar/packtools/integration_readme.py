"""The integration's README in the shape `demisto-sdk generate-docs` writes, from the generated YAML and
the examples recorded against the emulator (test_data/command_examples.json, command_examples.py).

    python connector/platforms/xsoar/packtools/integration_readme.py --write

Like `demisto-sdk generate-docs -e command_examples.txt`: "Configure ... in Cortex", then per command
Base Command, Input, Context Output, Command example, Context Example and Human Readable Output. From the
same declaration the YAML comes from, so the tables cannot drift from what the integration declares, and
from answers the integration really gave (a test compares the committed file, another re-records them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

try:
    from .command_examples import load as load_examples
    from .generated import generator_main
    from .integration_yml import INTEGRATION_DIR, integration
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from command_examples import load as load_examples  # type: ignore[import-not-found,no-redef]
    from generated import generator_main  # type: ignore[import-not-found,no-redef]
    from integration_yml import INTEGRATION_DIR, integration  # type: ignore[import-not-found,no-redef]

PATH = INTEGRATION_DIR / "README.md"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _parameter_rows(document: dict[str, Any]) -> list[str]:
    rows = ["| **Parameter** | **Description** | **Required** |", "| --- | --- | --- |"]
    for param in document["configuration"]:
        if param.get("hidden"):
            continue
        label = param.get("display") or param.get("displaypassword", "")
        if param["type"] == 9 and param.get("displaypassword") and param.get("display"):
            label = f"{param['display']} / {param['displaypassword']}"
        elif param["type"] == 9:
            label = param.get("displaypassword", "")
        info = param.get("additionalinfo", "")
        if param.get("defaultvalue") not in (None, ""):
            info = f"{info} Default: {param['defaultvalue']}.".strip()
        rows.append(f"| {_cell(label)} | {_cell(info)} | {'True' if param['required'] else 'False'} |")
    return rows


def context_example(entry_context: dict[str, Any]) -> dict[str, Any]:
    """The War Room's context after the entry, as generate-docs shows it: keys without their merge rule
    (``MDE.IPStatistics(val.IPAddress && ...)``), dotted paths nested."""
    nested: dict[str, Any] = {}
    for key, value in entry_context.items():
        *parents, last = key.split("(", 1)[0].split(".")
        where = nested
        for part in parents:
            where = where.setdefault(part, {})
        where[last] = value
    return nested


def _command_section(command: dict[str, Any], examples: list[dict[str, Any]]) -> list[str]:
    lines = [f"### {command['name']}", "", "***", command["description"], "", "#### Base Command", "",
             f"`{command['name']}`", "", "#### Input", ""]
    if command["arguments"]:
        lines += ["| **Argument Name** | **Description** | **Required** |", "| --- | --- | --- |"]
        for argument in command["arguments"]:
            extra = []
            if argument.get("isArray"):
                extra.append("A comma-separated list.")
            if argument.get("defaultValue"):
                extra.append(f"Default is {argument['defaultValue']}.")
            description = " ".join([argument["description"], *extra])
            lines.append(f"| {argument['name']} | {_cell(description)} | "
                         f"{'Required' if argument.get('required') else 'Optional'} |")
    else:
        lines.append("There are no input arguments for this command.")
    lines += ["", "#### Context Output", ""]
    if command.get("outputs"):
        lines += ["| **Path** | **Type** | **Description** |", "| --- | --- | --- |"]
        lines += [f"| {o['contextPath']} | {o['type']} | {_cell(o['description'])} |" for o in command["outputs"]]
    else:
        lines.append("There is no context output for this command.")
    for example in examples:
        lines += ["", "#### Command example", f"```{example['command']}```"]
        if example["context"]:
            shown = json.dumps(context_example(example["context"]), indent=4, ensure_ascii=False)
            lines += ["#### Context Example", "```json", shown, "```"]
        lines += ["", "#### Human Readable Output", ""]
        for readable in example["readable"]:
            lines += [f">{line}" if line else ">" for line in readable.splitlines()]
            lines.append("")
    return [*lines, ""]


def render(document: dict[str, Any] | None = None, examples: list[dict[str, Any]] | None = None) -> str:
    document = document or integration()
    examples = load_examples() if examples is None else examples
    name = document["commonfields"]["id"]
    lines = [
        "<!-- Generated by connector/platforms/xsoar/packtools/integration_readme.py: do not edit. -->",
        document["description"],
        "",
        "Organization prevalence is not reputation: every indicator gets a DBotScore of 0 (unknown) with the",
        "answer in words, and the verdict (`not_seen`, `rare`, `common`) is in `MDE.IPStatistics.Verdict`.",
        "",
        f"## Configure {name} in Cortex",
        "",
        *_parameter_rows(document),
        "",
        "There is no *Trust any certificate* option: TLS verification is never switched off.",
        "",
        "*Test* on the instance settings signs in, checks that the token carries `Ip.Read.All`, and makes one",
        "API call; it answers `ok` or the connector's message saying which step failed and what to fix. With",
        "delegated access it says to run `!mde-auth-start` and `!mde-auth-complete` instead (see below).",
        "",
        "## Commands",
        "",
        "You can execute these commands from the CLI, as part of an automation, or in a playbook.",
        "After you successfully execute a command, a DBot message appears in the War Room with the command details.",
        "",
        "The examples below are real answers of the integration, recorded against this project's emulator of",
        "Entra ID and Defender (packtools/command_examples.py); the sign-in URL is the emulator's.",
        "",
    ]
    for command in document["script"]["commands"]:
        mine = [e for e in examples if e["command"].removeprefix("!").split()[0] == command["name"]]
        lines += _command_section(command, mine)
    lines += ["## Delegated access (auth_mode delegated)", "",
              "Lookups can run as a named analyst instead of the application: set **Authentication mode** to "
              "`delegated` (tenant and client ID only, no secret; the app registration allows public client "
              "flows and has the delegated `Ip.Read.All` permission; the analyst holds Defender's **View data** "
              "role). Then `!mde-auth-start` shows a URL and a code, the analyst signs in there, and "
              "`!mde-auth-complete` (optionally `wait_s=60`) finishes; `!mde-auth-test` names the signed-in user "
              "and `!mde-auth-reset` forgets the tokens. The refresh token lasts 90 days of inactivity; when it "
              "runs out, lookups fail as `authentication` and say to run `!mde-auth-start` again.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return generator_main(PATH, render, "the integration README", argv)


if __name__ == "__main__":
    sys.exit(main())
