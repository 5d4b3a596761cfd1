"""A small, deterministic YAML writer for the pack's files (integration and playbook YAML).

The core's environment has no YAML library, and the generated files must be byte-for-byte stable
(a test compares the committed file with a fresh generation). Only what the pack needs: mappings,
sequences, strings, numbers, booleans and null. Strings are plain when nothing in them could read as
another type or as YAML syntax, block literals when they span lines (the embedded script), and JSON
double-quoted otherwise (JSON strings are valid YAML). The package script re-reads every file with a
real YAML parser (demisto-sdk's) and compares.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z_/$][A-Za-z0-9_ .,/()+'&$-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _RESERVED and not value.endswith(" ") \
                and " #" not in value:
            return value
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _block_literal(text: str, indent: int) -> str | None:
    """text as a literal block (|- or |), or None when a literal block could not carry it exactly."""
    if "\n" not in text.rstrip("\n") or text.endswith("\n\n") or "\r" in text or "\t" in text:
        return None
    if text.startswith((" ", "\n")) or any(ord(c) < 32 and c != "\n" for c in text):
        return None
    chomp = "|" if text.endswith("\n") else "|-"
    pad = " " * indent
    lines = [f"{pad}{line}" if line else "" for line in text.rstrip("\n").split("\n")]
    return chomp + "\n" + "\n".join(lines)


def _value(value: Any, indent: int) -> str:
    """The text after 'key:' (inline scalar, or a newline and an indented block)."""
    if isinstance(value, dict):
        return " {}" if not value else "\n" + _mapping(value, indent + 2)
    if isinstance(value, list):
        return " []" if not value else "\n" + _sequence(value, indent)
    if isinstance(value, str):
        literal = _block_literal(value, indent + 2)
        if literal is not None:
            return " " + literal
    return " " + _scalar(value)


def _mapping(mapping: dict[str, Any], indent: int) -> str:
    pad = " " * indent
    return "\n".join(f"{pad}{_scalar(str(key))}:{_value(value, indent)}" for key, value in mapping.items())


def _sequence(items: list[Any], indent: int) -> str:
    pad = " " * indent
    lines = []
    for item in items:
        if isinstance(item, dict) and item:
            body = _mapping(item, indent + 2)
            lines.append(f"{pad}- {body[indent + 2:]}")
        elif isinstance(item, list) and item:
            body = _sequence(item, indent + 2)
            lines.append(f"{pad}- {body[indent + 2:]}")
        else:
            lines.append(f"{pad}-{_value(item, indent)}")
    return "\n".join(lines)


def dump(document: dict[str, Any]) -> str:
    """document as YAML text, ending in a newline."""
    return _mapping(document, 0) + "\n"
