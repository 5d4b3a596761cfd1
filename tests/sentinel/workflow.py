"""Reading a Logic Apps workflow definition as the engine would, for the template tests: every action with
its scope, and the few expressions the playbook uses evaluated against sample run data.

The expression language subset: ``@name(args)`` calls (``body``, ``outputs``, ``parameters``,
``triggerBody``, ``item``, ``length``, ``greater``, ``listCallbackUrl``), string and number literals, and
``['key']`` / ``?['key']`` member access; a string that is one ``@`` expression is that expression's value
(typed: an array stays an array), ``@{...}`` inside a string is interpolated as text. Anything else is
an error, so a template that grows an expression this file does not know fails its test loudly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_$][\w$]*)"
                    r"|(?P<punct>\?\[|[()\[\],]))")
_REFERENCE = re.compile(r"\b(body|outputs|actions)\('([^']+)'\)")
_PARAMETER = re.compile(r"\bparameters\('([^']+)'\)")


def actions(scope: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, dict[str, Any]]]:
    """(scope path, name, action) for every action, nested ones (If branches, scopes) included."""
    for name, action in scope.items():
        yield path, name, action
        for branch in (action.get("actions"), (action.get("else") or {}).get("actions")):
            if branch:
                yield from actions(branch, (*path, name))


def expressions(node: Any) -> Iterator[str]:
    """Every string value that holds an expression (``@...`` or ``@{...}``)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)
    elif isinstance(node, str) and "@" in node:
        yield node


def referenced_actions(text: str) -> set[str]:
    return {name for _, name in _REFERENCE.findall(text)}


def referenced_parameters(text: str) -> set[str]:
    return set(_PARAMETER.findall(text))


@dataclass
class Run:
    """What one run knows: the trigger's body, the workflow parameters, each action's body and outputs."""

    trigger_body: Any
    parameters: dict[str, Any]
    bodies: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    item: Any = None

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {"body": lambda name: self.bodies[name], "outputs": lambda name: self.outputs[name],
                "parameters": lambda name: self.parameters[name], "triggerBody": lambda: self.trigger_body,
                "item": lambda: self.item, "length": len, "greater": lambda a, b: a > b,
                "listCallbackUrl": lambda: "https://logic.example/callback"}

    def evaluate(self, node: Any) -> Any:
        """A value of the definition (a dict, list or string) with every expression in it evaluated."""
        if isinstance(node, dict):
            return {key: self.evaluate(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.evaluate(value) for value in node]
        if not isinstance(node, str) or not node.startswith("@"):
            return node
        if node.startswith("@@"):
            return node[1:]
        if node.startswith("@{") or "@{" in node:
            return re.sub(r"@\{(.*?)\}", lambda m: _text(self._expression(m.group(1))), node)
        return self._expression(node[1:])

    def evaluate_item(self, node: Any, item: Any) -> Any:
        """``node`` evaluated for one element of a Select's or a loop's input (``item()``)."""
        saved, self.item = self.item, item
        try:
            return self.evaluate(node)
        finally:
            self.item = saved

    def _expression(self, text: str) -> Any:
        tokens = [(kind, value) for match in _TOKEN.finditer(text) for kind, value in match.groupdict().items()
                  if value is not None]
        if "".join(value for _, value in tokens).replace(" ", "") != text.replace(" ", ""):
            raise ValueError(f"unsupported expression: {text!r}")
        value, rest = self._parse(tokens)
        if rest:
            raise ValueError(f"trailing tokens in {text!r}: {rest}")
        return value

    def _parse(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        kind, value = tokens[0]
        rest = tokens[1:]
        if kind == "string":
            result: Any = value[1:-1].replace("''", "'")
        elif kind == "number":
            result = float(value) if "." in value else int(value)
        elif kind == "name" and rest and rest[0] == ("punct", "("):
            arguments, rest = [], rest[1:]
            while rest[0] != ("punct", ")"):
                argument, rest = self._parse(rest)
                arguments.append(argument)
                if rest[0] == ("punct", ","):
                    rest = rest[1:]
            rest = rest[1:]
            result = self.functions()[value](*arguments)
        else:
            raise ValueError(f"unexpected token {value!r}")
        while rest and rest[0][1] in ("[", "?["):
            safe = rest[0][1] == "?["
            key, rest = self._parse(rest[1:])
            if rest[0] != ("punct", "]"):
                raise ValueError("expected ]")
            rest = rest[1:]
            if result is None and safe:
                continue
            result = result.get(key) if safe and isinstance(result, dict) else result[key]
        return result, rest


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
