"""What a playbook may POST to the Function, read into the core's get_ip_statistics parameters.

Two shapes: ``{"ips": ["..."], "lookback_hours": 48}``, and Sentinel's "Entities - Get IPs" output as
the playbook passes it on, ``{"IPs": [{"Address": "..."}], "lookback_hours": 48}``; either may add
``"lane"`` (the share of the rate limit: a playbook is automation, the core's default; a playbook an
analyst runs on demand and waits on may say interactive; the core checks the value). Entity addresses may
carry a port (Sentinel maps ``ip:port`` strings to IP entities): it is taken off here, at the edge,
only in the two unambiguous spellings (``[2001:db8::1]:443``, ``1.2.3.4:80``); every other text goes to
the core's strict parser as it came, which decides. A bad item is a failed result, never a bad request:
only a body that is not one of the two shapes is refused (400).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

ACCEPTED_KEYS = ("ips", "IPs", "lookback_hours", "lane")
_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?$")
_IPV4_PORT = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,3}){3}):([0-9]{1,5})$")
MAX_BODY_BYTES = 1 << 20


class BadRequest(ValueError):
    """The body is not one of the two shapes (the message says what is accepted)."""


@dataclass(frozen=True)
class Lookup:
    """The core's parameters for one call: every address as given (port taken off), the window, the lane."""

    items: list[Any]
    lookback_hours: Any
    lane: Any = None


def without_port(address: Any) -> Any:
    """An address with its port taken off, when it is written ``[v6]:port`` (or ``[v6]``) or ``v4:port``
    with a port of 0-65535; anything else unchanged (a bare IPv6 address has colons, not a port)."""
    if not isinstance(address, str):
        return address
    text = address.strip()
    for pattern in (_BRACKETED, _IPV4_PORT):
        match = pattern.match(text)
        if match and (match.group(2) is None or int(match.group(2)) <= 65535):
            return match.group(1)
    return address


def parse_body(body: bytes) -> Lookup:
    """The call's lookup, or BadRequest."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"The body is over {MAX_BODY_BYTES} bytes.")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The body is not JSON.") from None
    if not isinstance(document, dict):
        raise BadRequest("The body must be a JSON object.")
    unknown = sorted(k for k in document if k not in ACCEPTED_KEYS)
    shapes = [k for k in ("ips", "IPs") if k in document]
    if unknown or len(shapes) != 1:
        raise BadRequest(
            "Send {\"ips\": [\"...\"], \"lookback_hours\": 48} or Sentinel's Entities - Get IPs output "
            "{\"IPs\": [{\"Address\": \"...\"}]}, either with \"lane\" if need be"
            + (f"; unknown keys: {', '.join(json.dumps(k) for k in unknown)[:200]}" if unknown else "")
            + ("; give ips or IPs, not both" if len(shapes) > 1 else "") + ".")
    listed = document[shapes[0]]
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        raise BadRequest(f"{shapes[0]} must be a list.")
    items = listed if shapes[0] == "ips" else [_entity_address(entity) for entity in listed]
    return Lookup([without_port(item) for item in items], document.get("lookback_hours"), document.get("lane"))


def _entity_address(entity: Any) -> Any:
    """An IP entity's address (``Address``, as Sentinel names it); an entity without one is passed on as
    it is, for the core to refuse as one failed item."""
    if isinstance(entity, dict):
        for key in ("Address", "address"):
            if key in entity:
                return entity[key]
    return entity
