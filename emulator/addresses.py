"""IP address parsing shared by the API handler and the synthetic organisation.

One canonical text form per address, so that lookups never depend on how a caller spelled it:
IPv4 dotted quad; IPv6 compressed lower case (`2001:DB8:0::1` -> `2001:db8::1`). An IPv4-mapped
IPv6 address (`::ffff:10.209.67.177`) is the IPv4 address it maps: a device that connected to
`10.209.67.177` did so whichever socket family logged it.
"""

from __future__ import annotations

import ipaddress


class InvalidIp(ValueError):
    pass


def canonical_ip(text: str) -> str:
    """Parse strictly (no zone ids, no whitespace, no leading zeros) and return the canonical form."""
    if not text or text != text.strip() or "%" in text or "/" in text:
        raise InvalidIp(text)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidIp(text) from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise InvalidIp(text)
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return address.compressed
    return str(address)


def ipv4_text(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def ipv6_text(value: int) -> str:
    return ipaddress.IPv6Address(value).compressed


# IPv4 ranges that are not globally routable unicast: never used as "external" addresses.
_NOT_PUBLIC_V4: tuple[tuple[int, int], ...] = tuple(
    (int(n.network_address), int(n.broadcast_address))
    for n in map(ipaddress.ip_network, (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
    ))
)


def is_public_v4(value: int) -> bool:
    return not any(lo <= value <= hi for lo, hi in _NOT_PUBLIC_V4)
