"""Strict parsing of the action's inputs: what is not a plain IP address never reaches a URL.

The IP goes into the request path (`/api/ips/{ip}/stats`), so the parser accepts only the characters
an address is written with, lets :mod:`ipaddress` decide, and returns the canonical form. Everything
else (CIDR ranges, zone ids, ports, host names, path or query fragments, percent-encoding, non-ASCII
digits) becomes an ``invalid_input`` item that names the bad text, and the rest of the batch goes on.
"""

from __future__ import annotations

import ipaddress
import re
import reprlib
from collections.abc import Iterable
from typing import Any, NamedTuple

from connector.errors import InvalidInputError
from connector.lanes import DEFAULT_LANE, LANES, Lane

DEFAULT_LOOKBACK_HOURS = 720
MAX_LOOKBACK_HOURS = 720
MIN_LOOKBACK_HOURS = 1
MAX_ITEMS = 5000
"""More addresses than this in one run is a mistake upstream; the rest are refused, not dropped."""

_ADDRESS_CHARS = re.compile(r"^[0-9A-Fa-f.:]{2,45}$")
_SEPARATORS = re.compile(r"[,\s]+")
_SHOWN_CHARS = 60
_LOOKBACK_DIGITS = re.compile(r"0*[0-9]{1,4}")
"""At most four significant digits: int() of a longer text costs time, and past 4,300 digits raises."""
_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxother = _SHOWN_CHARS


class ParsedItem(NamedTuple):
    """One input item: either a canonical address or the reason it was refused."""

    raw: str
    ip: str | None
    error: InvalidInputError | None = None


def show(value: object) -> str:
    """A safe, bounded rendering of user input for a message: control characters escaped."""
    text = value[: _SHOWN_CHARS * 2] if isinstance(value, str) else _REPR.repr(value)
    rendered = text.encode("unicode_escape").decode("ascii")
    if len(rendered) > _SHOWN_CHARS:
        rendered = rendered[: _SHOWN_CHARS - 3] + "..."
    return f"'{rendered}'" if isinstance(value, str) else rendered


def canonical_ip(text: str) -> str:
    """The canonical form of one IPv4 or IPv6 address, or InvalidInputError naming the text.

    IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``) are answered as the IPv4 address they carry:
    that is how Defender records the connection, and the two spellings are the same host.
    """
    candidate = text.strip()
    if not candidate:
        raise InvalidInputError("An empty IP address was given.", code="EmptyInput")
    if not _ADDRESS_CHARS.match(candidate):
        raise InvalidInputError(
            f"{show(candidate)} is not an IP address: give one IPv4 or IPv6 address "
            "(no ranges, ports, zone ids, host names or URL characters).",
            code="InvalidIpAddress",
        )
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise InvalidInputError(f"{show(candidate)} is not a valid IPv4 or IPv6 address.",
                                code="InvalidIpAddress") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def split_ip_input(value: Any) -> list[Any]:
    """The raw items of the ``ip`` input: one address, a comma-separated string, or a list."""
    if isinstance(value, str):
        parts = [p for p in _SEPARATORS.split(value) if p]
        return parts if parts else [value]
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for element in value:
            if isinstance(element, str) and _SEPARATORS.search(element.strip()):
                items.extend(p for p in _SEPARATORS.split(element) if p)
            else:
                items.append(element)
        return items if items else [""]
    return [value]


def parse_ip_items(value: Any) -> list[ParsedItem]:
    """Every item of the ``ip`` input, canonical and deduplicated in order; bad items kept as errors."""
    parsed: list[ParsedItem] = []
    seen: set[str] = set()
    for index, item in enumerate(split_ip_input(value)):
        raw = item if isinstance(item, str) else show(item)
        if index >= MAX_ITEMS:
            parsed.append(ParsedItem(raw, None, InvalidInputError(
                f"Too many addresses in one run (the limit is {MAX_ITEMS}); {show(raw)} was not looked up. "
                "Split the batch.", code="TooManyItems")))
            continue
        if not isinstance(item, str):
            parsed.append(ParsedItem(raw, None, InvalidInputError(
                f"{raw} is not an IP address: expected a string, got {type(item).__name__}.",
                code="InvalidIpAddress")))
            continue
        try:
            ip = canonical_ip(item)
        except InvalidInputError as exc:
            parsed.append(ParsedItem(item.strip(), None, exc))
            continue
        if ip not in seen:
            seen.add(ip)
            parsed.append(ParsedItem(item.strip(), ip))
    return parsed


def parse_lookback_hours(value: Any) -> int:
    """The look-back in whole hours, 1 to 720; text of ASCII digits is accepted (SOAR forms send text)."""
    if value is None or value == "":
        return DEFAULT_LOOKBACK_HOURS
    hours: int | None = None
    if isinstance(value, bool):
        hours = None
    elif isinstance(value, int):
        hours = value
    elif isinstance(value, float) and value.is_integer():
        hours = int(value)
    elif isinstance(value, str) and _LOOKBACK_DIGITS.fullmatch(value.strip()):
        hours = int(value.strip())
    if hours is None or not MIN_LOOKBACK_HOURS <= hours <= MAX_LOOKBACK_HOURS:
        raise InvalidInputError(
            f"lookback_hours {show(value)} is not valid: give a whole number of hours from "
            f"{MIN_LOOKBACK_HOURS} to {MAX_LOOKBACK_HOURS} (720 = 30 days, Defender's maximum).",
            code="InvalidInput",
        )
    return hours


def parse_lane(value: Any) -> Lane:
    """The ``lane`` input: interactive, automation (the default, also for an empty value) or bulk, in any
    case and with spaces around; anything else fails every item, before any lookup."""
    if value is None or value == "":
        return DEFAULT_LANE
    text = value.strip().lower() if isinstance(value, str) else None
    for lane in LANES:
        if text == lane:
            return lane
    raise InvalidInputError(
        f"lane {show(value)} is not valid: give interactive (a person is waiting), automation (a playbook; "
        "the default) or bulk (a search or sweep over many addresses).", code="InvalidInput")


def unique_ips(items: Iterable[ParsedItem]) -> list[str]:
    return [item.ip for item in items if item.ip is not None]
