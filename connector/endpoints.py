"""Which hosts and token scope a tenant's cloud and region use (mde-api.md, "Endpoints")."""

from __future__ import annotations

from typing import Literal, NamedTuple

Cloud = Literal["commercial", "gcc", "gcc-high", "dod"]
Region = Literal["auto", "us", "eu", "uk", "au", "swa", "ina"]

CLOUDS: tuple[Cloud, ...] = ("commercial", "gcc", "gcc-high", "dod")
REGIONS: tuple[Region, ...] = ("auto", "us", "eu", "uk", "au", "swa", "ina")


class Endpoints(NamedTuple):
    api_url: str
    login_url: str
    scope: str


_COMMERCIAL_SCOPE = "https://api.securitycenter.microsoft.com/.default"
_GCC_SCOPE = "https://securitycenter.onmicrosoft.com/windowsatpservice/.default"
_GOV_SCOPE = "https://securitycenter.onmicrosoft.us/windowsatpservice/.default"

_BY_CLOUD: dict[Cloud, Endpoints] = {
    "commercial": Endpoints("https://api.security.microsoft.com", "https://login.microsoftonline.com",
                            _COMMERCIAL_SCOPE),
    "gcc": Endpoints("https://api-gcc.securitycenter.microsoft.us", "https://login.microsoftonline.com",
                     _GCC_SCOPE),
    "gcc-high": Endpoints("https://api-gov.securitycenter.microsoft.us", "https://login.microsoftonline.us",
                          _GOV_SCOPE),
    "dod": Endpoints("https://api-gov.securitycenter.microsoft.us", "https://login.microsoftonline.us",
                     _GOV_SCOPE),
}


def resolve_endpoints(
    cloud: Cloud,
    region: Region,
    *,
    api_url: str | None = None,
    login_url: str | None = None,
    scope: str | None = None,
) -> Endpoints:
    """The endpoints for a cloud and region; explicit overrides always win.

    Regions are geo hosts of the commercial cloud only (Microsoft recommends the one nearest the
    tenant's data); the government clouds have a single API host each.
    """
    base = _BY_CLOUD[cloud]
    default_api = base.api_url
    if cloud == "commercial" and region != "auto":
        default_api = f"https://{region}.api.security.microsoft.com"
    return Endpoints(
        api_url=(api_url or default_api).rstrip("/"),
        login_url=(login_url or base.login_url).rstrip("/"),
        scope=scope or base.scope,
    )


REQUIRED_ROLE = "Ip.Read.All"
"""The permission GET /api/ips/{ip}/stats needs: the application's `roles`, or a person's `scp`."""
