"""How the connector declares and checks its data shapes: msgspec structs.

The configuration, the inputs and the result object are typed structs whose annotations carry the
constraints and descriptions; manifest.json's JSON Schema is generated from them (manifest.py), so the
declaration and the code cannot drift apart. msgspec rather than pydantic, because every SOAR platform
runs an action in a fresh process: importing msgspec and defining every struct costs a few
milliseconds, where pydantic's import and first model cost about 100 ms, a lookup's whole budget
(issue 13, bench/README.md).

Structs are built unchecked by their constructor (the code builds them from values it already
checked); what comes from outside (configuration, action inputs, a cache entry) goes through
:func:`load`, which checks every field and names each problem at once, never echoing a value.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec


class Model(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every declared shape: unknown fields refused. (kw_only, which lets a required field follow
    an optional one, is per class in msgspec: a struct that needs it says so.)"""


class Secret:
    """A secret string that never shows itself: repr, str, logs, dumps and error messages print stars.

    ``get_secret_value()`` is the one way to read it, so every read is easy to find.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


T = TypeVar("T", bound=msgspec.Struct)


class ShapeError(ValueError):
    """Values that do not fit a struct: ``problems`` holds one "field: reason" per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _decode(kind: type, value: Any) -> Any:
    """msgspec's hook for the one type it does not know: Secret, from text (and nothing else)."""
    if kind is Secret:
        if isinstance(value, str):
            return Secret(value)
        raise TypeError(f"must be text, not {type(value).__name__}")  # msgspec reports it as invalid
    raise NotImplementedError(kind)


def load(shape: type[T], values: Mapping[str, Any], rules: Mapping[str, Callable[[Any], Any]] | None = None) -> T:
    """Check outside values against a struct and build it, or raise ShapeError naming every problem.

    Lax about representation, as configuration forms are ("30" for 30, "true" for True), strict about
    meaning. Each field is checked on its own so that every bad field is named, not just the first;
    the struct's own ``__post_init__`` checks (ValueError) then run on the whole. ``rules`` are the
    per-field rules that ``__post_init__`` applies: when some field has the wrong type, they are asked
    about the others, so that one message still names every bad field.
    """
    problems: list[str] = []
    fields = {field.encode_name: field for field in msgspec.structs.fields(shape)}
    for name in values:
        if name not in fields:
            problems.append(f"{name}: is not a known field")
    typed: dict[str, Any] = {}
    for name, field in fields.items():
        if name in values:
            try:
                typed[name] = msgspec.convert(values[name], field.type, strict=False, dec_hook=_decode)
            except msgspec.ValidationError as exc:
                problems.append(f"{name}: {_reason(exc, field.type)}")
        elif field.required:
            problems.append(f"{name}: is required")
    if problems:
        for name, rule in (rules or {}).items():
            if typed.get(name) is not None:
                try:
                    rule(typed[name])
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
        raise ShapeError(problems)
    try:
        return msgspec.convert(dict(values), shape, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:  # __post_init__'s own checks
        raise ShapeError(str(exc).split("; ")) from None


def _reason(exc: msgspec.ValidationError, kind: Any) -> str:
    """msgspec's message without its location suffix (the caller names the field), and for a choice
    the choices rather than the value given (a message never repeats what was submitted)."""
    reason = str(exc).split(" - at `", 1)[0]
    choices = _choices(kind)
    if choices and reason.startswith("Invalid enum value"):
        return "must be one of " + ", ".join(choices)
    return reason


def _choices(kind: Any) -> list[str]:
    """The values of the Literal inside a field's type (through Annotated and | None), if any."""
    if typing.get_origin(kind) is typing.Literal:
        return [str(value) for value in typing.get_args(kind)]
    return [choice for argument in typing.get_args(kind) for choice in _choices(argument)]


def to_builtins(shape: msgspec.Struct) -> Any:
    """A struct as JSON-ready builtins (enums as their values)."""
    return msgspec.to_builtins(shape)
