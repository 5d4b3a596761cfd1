"""The shapes only the declaration needs: each action's typed result, and the inputs the code parses itself.

manifest.json declares what every action takes and returns, and is generated from these models (with
the configuration and the result object). At run time nothing builds or checks them: the code parses
get_ip_statistics' input itself (inputs.py, more strictly than the schema) and builds its results from
values it made. So they are defined only where something asks for them — the manifest's generator, the
tests that hold results to their declared shape — and a fresh action process does not spend a
millisecond per class defining them. Each is still importable from the module it belongs to
(``connector.results.IpStatisticsResult``, ``connector.manifest.GetIpStatisticsInput``, ...), which
loads this module on first use (models.declared_elsewhere).
"""

from __future__ import annotations

from pydantic import Field

from connector.meaning import Scope, Verdict
from connector.models import Model
from connector.results import ActionResult, IpStatistics
from connector.signin import SignInData, SignInSummary


class GetIpStatisticsInput(Model):
    """Inputs of get_ip_statistics."""

    ip: str | list[str] = Field(
        description="One IPv4 or IPv6 address, a comma-separated list, or an array of addresses",
        examples=["10.209.67.177", "10.209.67.177, 2001:db8::1"],
        json_schema_extra={"x-primary": True, "x-contains": ["ip", "ipv6"]})
    lookback_hours: int = Field(
        default=720, ge=1, le=720,
        description="Look-back window in hours (1 to 720; Defender's maximum, 30 days, is the default)")


class TestConnectivityInput(Model):
    """test_connectivity takes no input."""


class IpStatisticsSummary(Model):
    """The summary of a get_ip_statistics result (empty when it failed)."""

    organization_prevalence: int | None = Field(default=None, ge=0)
    seen_in_org: bool | None = None
    verdict: Verdict | None = None
    ip_scope: Scope | None = Field(default=None, description="Present for every valid address, failed lookups too")


class IpStatisticsResult(ActionResult):
    """get_ip_statistics' result as declared in manifest.json: the generic result, typed."""

    data: list[IpStatistics] = Field(default=[], max_length=1)  # type: ignore[assignment]
    summary: IpStatisticsSummary = Field(default_factory=IpStatisticsSummary)  # type: ignore[assignment]


class ConnectivityChecks(Model):
    """What test_connectivity proved, check by check."""

    sign_in: bool
    permission: bool
    api: bool
    login_url: str
    api_url: str
    token_audience: str | None
    token_roles: list[str]
    user: str | None = Field(default=None, description="Delegated mode: the signed-in person (upn)")
    token_scopes: list[str] = Field(default=[], description="Delegated mode: the token's scp")


class ConnectivitySummary(Model):
    sign_in: bool | None = None
    permission: bool | None = None
    api: bool | None = None


class ConnectivityResult(ActionResult):
    """test_connectivity's result as declared in manifest.json."""

    data: list[ConnectivityChecks] = Field(default=[], max_length=1)  # type: ignore[assignment]
    summary: ConnectivitySummary = Field(default_factory=ConnectivitySummary)  # type: ignore[assignment]


class StartSignInInput(Model):
    """start_sign_in takes no input."""


class SignOutInput(Model):
    """sign_out takes no input."""


class SignInResult(ActionResult):
    """The result of start_sign_in, complete_sign_in and sign_out, as declared in manifest.json."""

    data: list[SignInData] = Field(default=[], max_length=1)  # type: ignore[assignment]
    summary: SignInSummary = Field(default_factory=SignInSummary)  # type: ignore[assignment]

