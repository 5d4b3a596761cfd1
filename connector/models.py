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

import functools
import re
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

    def describe(self, what: str) -> str:
        """One message naming each bad field and why (never the value given): "Invalid input: ..."."""
        return f"Invalid {what}: " + "; ".join(self.problems)


def _decode(kind: type, value: Any) -> Any:
    """msgspec's hook for the one type it does not know: Secret, from text (and nothing else)."""
    if kind is Secret:
        if isinstance(value, str):
            return Secret(value)
        raise TypeError(f"must be text, not {type(value).__name__}")  # msgspec reports it as invalid
    raise NotImplementedError(kind)


def load(shape: type[T], values: Mapping[str, Any], rules: Mapping[str, Callable[[Any], Any]] | None = None) -> T:
    """Check outside values against a struct and build it, or raise ShapeError naming every problem.

    Each field is checked on its own, so that every bad field is named, not just the first: its type
    and constraints (lax about representation, as configuration forms are: "30" for 30, " 30 " too),
    then its rule in ``rules`` if any (which may normalise the value, or raise ValueError). The struct
    is then built, and its ``__post_init__`` checks what spans fields (ValueError).

    This is the one place outside values are checked: a struct built in code, or copied with changes,
    is trusted to hold what the code put there.
    """
    problems: list[str] = []
    fields = _fields(shape)
    for name in values:
        if name not in fields:
            problems.append(f"{name}: is not a known field")
    checked: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in values:
            if field.required:
                problems.append(f"{name}: is required")
            continue
        try:
            value = _convert(values[name], field.type)
            rule = (rules or {}).get(name)
            checked[name] = value if rule is None or value is None else rule(value)
        except msgspec.ValidationError as exc:
            problems.append(f"{name}: {_reason(exc, field.type)}")
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ShapeError(problems)
    try:
        return shape(**checked)
    except ValueError as exc:  # __post_init__'s checks across fields
        raise ShapeError(str(exc).split("; ")) from None


@functools.cache
def _fields(shape: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    """A struct's fields by name, resolved once per process: resolving the annotations costs about a
    millisecond, and a long-lived worker loads a cached answer's facts for every IP it serves."""
    return {field.encode_name: field for field in msgspec.structs.fields(shape)}


def _convert(value: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(value, kind, strict=False, dec_hook=_decode)
    except msgspec.ValidationError:
        if isinstance(value, str) and value.strip() != value:  # " 30 " from an environment variable or a form
            return msgspec.convert(value.strip(), kind, strict=False, dec_hook=_decode)
        raise


_EXPECTED = re.compile(r"^Expected `(int|float)`(?: (?P<bound>[<>]=? \S+))?(?:, got `\w+`)?$")
_NUMBERS = {"int": "a whole number", "float": "a number"}


def _reason(exc: msgspec.ValidationError, kind: Any) -> str:
    """msgspec's message in words for a form's user, without its location suffix (the caller names
    the field): "must be a whole number <= 100", "must be one of a, b" (the choices, never the value
    given: a message does not repeat what was submitted)."""
    reason = str(exc).split(" - at `", 1)[0]
    choices = _choices(kind)
    if choices and reason.startswith("Invalid enum value"):
        return "must be one of " + ", ".join(choices)
    number = _EXPECTED.match(reason)
    if number:
        return f"must be {_NUMBERS[number[1]]}" + (f" {number['bound']}" if number["bound"] else "")
    return reason


def _choices(kind: Any) -> list[str]:
    """The values of the Literal inside a field's type (through Annotated and | None), if any."""
    if typing.get_origin(kind) is typing.Literal:
        return [str(value) for value in typing.get_args(kind)]
    return [choice for argument in typing.get_args(kind) for choice in _choices(argument)]


def to_builtins(shape: msgspec.Struct) -> Any:
    """A struct as JSON-ready builtins (enums as their values)."""
    return msgspec.to_builtins(shape)
