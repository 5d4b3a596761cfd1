"""How the connector declares and checks its data shapes: pydantic v2 models.

The configuration, the inputs and the result object are models whose fields carry the constraints
and descriptions; manifest.json's JSON Schema is generated from them (manifest.py), so the declaration
and the code cannot drift apart.

Every SOAR platform runs an action in a fresh process, so a model costs only what the process uses:
its class is defined at import, but its validator is built (``defer_build``) the first time something
is checked against it, and values the code built itself are not checked again (``model_construct``).
What comes from outside (configuration, action inputs, a cache entry) goes through :func:`load`, which
names every problem at once, in words for whoever filled in the form: never the value given, never
pydantic's own wording (its messages quote the input and link to its documentation).
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, ValidationInfo, field_validator

Secret = SecretStr
"""A secret string that never shows itself: repr, str, dumps and error messages print stars;
``get_secret_value()`` is the one way to read it, so every read is easy to find."""

Rules = Mapping[str, Callable[[Any], Any]]
_RULES = "connector.rules"
"""Where load() hands its per-field rules to the validation (pydantic's validation context)."""


class Model(BaseModel):
    """Base of every declared shape: unknown fields refused, the validator built on first use."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    @field_validator("*")
    @classmethod
    def _rule(cls, value: Any, info: ValidationInfo) -> Any:
        """A field's rule given to load(), run on the value its type and constraints accepted."""
        rules: Rules | None = info.context.get(_RULES) if isinstance(info.context, dict) else None
        rule = rules.get(info.field_name) if rules and info.field_name else None
        return value if rule is None or value is None else rule(value)


T = TypeVar("T", bound=BaseModel)


class ShapeError(ValueError):
    """Values that do not fit a model: ``problems`` holds one "field: reason" per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def describe(self, what: str) -> str:
        """One message naming each bad field and why (never the value given): "Invalid input: ..."."""
        return f"Invalid {what}: " + "; ".join(self.problems)


def load(shape: type[T], values: Mapping[str, Any], rules: Rules | None = None) -> T:
    """Check outside values against a model and build it, or raise ShapeError naming every problem.

    Every field is checked, so that every bad field is named, not just the first: its type and
    constraints (lax about representation, as configuration forms are: "30" for 30, " 30 " too), then
    its rule in ``rules`` if any (which may normalise the value, or raise ValueError). The model's own
    validators then check what spans fields (ValueError).

    This is the one place outside values are checked: a model built in code with ``model_construct``,
    or copied with changes, is trusted to hold what the code put there.
    """
    try:
        return shape.model_validate(values, context={_RULES: rules} if rules else None)
    except ValidationError as exc:
        raise ShapeError(_problems(exc, shape)) from None


def _problems(exc: ValidationError, shape: type[BaseModel]) -> list[str]:
    """pydantic's errors as "field: reason", one per field (a union's branches read as one reason)."""
    by_field: dict[str, list[str]] = {}
    across: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        if not error["loc"]:  # a model validator's rule across fields
            across.append(_reason(error, None))
            continue
        name = str(error["loc"][0])
        reasons = by_field.setdefault(name, [])
        reason = _reason(error, shape.model_fields.get(name))
        if reason not in reasons:
            reasons.append(reason)
    return [f"{name}: {' or '.join(reasons)}" for name, reasons in by_field.items()] + across


_WORDS = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"),
           "less_than_equal": ("le", "<=")}


def _reason(error: Any, field: Any) -> str:
    """One error in words for a form's user, without the field's name (the caller adds it): "must be a
    whole number <= 100", "must be one of a, b" (the choices in their declared order, never the value
    given: a message does not repeat what was submitted)."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and "error" in context:
        return str(context["error"])  # our own rule's words
    if kind in _WORDS:
        return _WORDS[kind]
    if kind in _BOUNDS:
        key, operator = _BOUNDS[kind]
        number = "a whole number" if int in _types(field) else "a number"
        bound = context[key]
        return f"must be {number} {operator} {int(bound) if float(bound).is_integer() else bound}"
    if kind in ("literal_error", "enum"):
        choices = _choices(field.annotation) if field is not None else []
        if choices:
            return "must be one of " + ", ".join(choices)
    message = str(error["msg"])
    return "must be " + message.removeprefix("Input should be ") if message.startswith("Input should be ") else message


def _types(field: Any) -> tuple[Any, ...]:
    """The types a field's annotation admits (``int | None`` admits int and None)."""
    if field is None:
        return ()
    annotation = field.annotation
    return typing.get_args(annotation) or (annotation,)


def _choices(kind: Any) -> list[str]:
    """The values of the Literal (or Enum) inside a field's type (through | None), in declared order."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(member.value) for member in kind]
    if typing.get_origin(kind) is typing.Literal:
        return [str(value) for value in typing.get_args(kind)]
    return [choice for argument in typing.get_args(kind) for choice in _choices(argument)]


def declared_elsewhere(module: str, names: tuple[str, ...]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` (PEP 562) for its models that only the declaration needs: they live in
    connector/declared.py, which is imported the first time one of them is asked for. Any other name is
    refused at once (the import system asks a module for ``__path__`` and the like)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            from connector import declared

            return getattr(declared, name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def to_builtins(value: Any) -> Any:
    """A model (or what it holds) as JSON-ready builtins: enums as their values, secrets as stars.

    What ``model_dump(mode="json")`` gives for the connector's shapes, without building the model's
    serializer: results are built unchecked, and building a serializer costs what building a validator
    does, which a fresh action process that only reports its result has no use for.
    """
    if isinstance(value, BaseModel):
        return {name: to_builtins(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, SecretStr):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_builtins(item) for item in value]
    if isinstance(value, dict):
        return {key: to_builtins(item) for key, item in value.items()}
    return value
