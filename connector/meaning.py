"""What an answer means: verdict, the address's scope and its novelty, judged once for every platform.

Defender says *how many* devices talked to an IP and *when*; an analyst needs *so what*: never seen
here, rare (a handful of devices), or common (everyone talks to it); a private or a public address;
new in the window or long familiar. Adapters, views and playbooks read these fields instead of each
keeping a threshold of its own.

The scope needs no Defender at all (it is a fact of the address, from the standard library's
``ipaddress`` tables plus the few special ranges it does not name), so a failed lookup carries it too.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Literal, NamedTuple

Verdict = Literal["not_seen", "rare", "common"]
Scope = Literal["private", "public", "loopback", "link_local", "multicast", "shared", "reserved"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class IpScope(NamedTuple):
    """The address's place in the Internet's address plan; ``detail`` names the reserved sub-case."""

    scope: Scope
    detail: str | None = None

    def words(self) -> str:
        """'private', 'link-local', 'reserved: documentation', ... for messages."""
        text = {"link_local": "link-local", "shared": "shared address space"}.get(self.scope, self.scope)
        return f"{text}: {self.detail.replace('_', ' ')}" if self.detail else text


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


_PRIVATE = _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
_SHARED = _networks("100.64.0.0/10")
_Named = tuple[tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...]
# Reserved ranges an analyst may meet in an alert, named (RFC 6890 and the IANA special-purpose
# registries). These are never globally reachable:
_RESERVED: _Named = (
    ("documentation", _networks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")),
    ("benchmarking", _networks("198.18.0.0/15", "2001:2::/48")),
    ("this_network", _networks("0.0.0.0/8")),
    ("broadcast", _networks("255.255.255.255/32")),
    ("future_use", _networks("240.0.0.0/4")),
)
# ... and these hold a few globally reachable exceptions (RFC 8155, AMT, ORCHIDv2, some anycast
# services). Listed here rather than read from ipaddress's is_global, whose tables changed between
# Python 3.11 and 3.13 (the adapters run on both).
_SPECIAL: _Named = (
    ("protocol_assignments", _networks("192.0.0.0/24", "2001::/23")),
    ("deprecated_6to4_relay", _networks("192.88.99.0/24")),
    ("discard_only", _networks("100::/64")),
    ("translation_local_use", _networks("64:ff9b:1::/48")),
    ("site_local", _networks("fec0::/10")),
)
_GLOBAL_EXCEPTIONS = _networks("192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:3::/32",
                               "2001:4:112::/48", "2001:20::/28", "2001:30::/28")


def ip_scope(address: IpAddress | str) -> IpScope:
    """The scope of one address; an IPv4-mapped IPv6 address is judged as its IPv4 address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return IpScope("reserved", "unspecified")
    if ip.is_loopback:
        return IpScope("loopback")
    if ip.is_link_local:
        return IpScope("link_local")
    if ip.is_multicast:
        return IpScope("multicast")
    if any(ip in net for net in _SHARED):
        return IpScope("shared")
    if any(ip in net for net in _PRIVATE):
        return IpScope("private")
    for detail, networks in _RESERVED:
        if any(ip in net for net in networks):
            return IpScope("reserved", detail)
    if not any(ip in net for net in _GLOBAL_EXCEPTIONS):
        for detail, networks in _SPECIAL:
            if any(ip in net for net in networks):
                return IpScope("reserved", detail)
    if ip.is_global or any(ip in net for net in _GLOBAL_EXCEPTIONS):
        return IpScope("public")
    return IpScope("reserved", "special_purpose")


def verdict(prevalence: int, rare_device_threshold: int) -> Verdict:
    """not_seen (0 devices, or the older API's 404), rare (at most the threshold), else common."""
    if prevalence <= 0:
        return "not_seen"
    return "rare" if prevalence <= rare_device_threshold else "common"


def age_hours(timestamp: str | None, now: datetime) -> float | None:
    """Hours from an RFC 3339 UTC timestamp to ``now`` (to 0.01 h; never negative), or None."""
    if not timestamp:
        return None
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(max(0.0, (now - moment).total_seconds() / 3600.0), 2)


def new_in_window(first_seen_age_h: float | None, lookback_hours: int, novelty_hours: int) -> bool | None:
    """True when first seen within the last ``novelty_hours`` of a longer window, else False.

    ``orgFirstSeen`` is the first connection *within the window*, not ever: an IP first seen at the
    window's very start may be old. So novelty is only claimed when the window reaches further back
    than ``novelty_hours`` (the earlier part of the window saw nothing); a window no longer than
    that cannot tell new from old, and the answer is None.
    """
    if lookback_hours <= novelty_hours:
        return None
    return first_seen_age_h is not None and first_seen_age_h <= novelty_hours


def ago(hours: float) -> str:
    """'12 minutes ago', '3 hours ago', '5 days ago': an age as a person says it."""
    if hours < 1:
        minutes = round(hours * 60)
        return "just now" if minutes < 1 else f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    if hours < 48:
        whole = round(hours)
        return f"{whole} hour{'s' if whole != 1 else ''} ago"
    days = round(hours / 24)
    return f"{days} days ago"
