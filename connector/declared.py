"""The models a lookup never needs, defined the first time something asks for one.

- What only the declaration needs: each action's typed result, and the inputs of the actions whose
  input the code parses itself. manifest.json is generated from them, and tests hold results to them;
  at run time nothing builds or checks them (inputs.py parses get_ip_statistics' input, more strictly
  than the schema, and results are built from values the code made).
- The sign-in actions' shapes (their input and data), which only a sign-in action uses.

A fresh action process therefore spends nothing defining them (about half a millisecond a class, more
in a process as large as the Splunk SOAR SDK's, where each allocation brings the garbage collector
closer). Each stays importable from the module it belongs to (``connector.results.IpStatisticsResult``,
``connector.manifest.GetIpStatisticsInput``, ``connector.signin.SignInData``, ...), which loads this
module on first use (models.declared_elsewhere).
"""

from __future__ import annotations

from pydantic import Field

from connector.lanes import DEFAULT_LANE, Lane
from connector.meaning import Scope, Verdict
from connector.models import Model
from connector.results import ActionResult, IpStatistics
from connector.signin import MAX_WAIT_S, SignInState


class GetIpStatisticsInput(Model):
    """Inputs of get_ip_statistics."""

    ip: str | list[str] = Field(
        description="One IPv4 or IPv6 address, a comma-separated list, or an array of addresses",
        examples=["10.209.67.177", "10.209.67.177, 2001:db8::1"],
        json_schema_extra={"x-primary": True, "x-contains": ["ip", "ipv6"]})
    lookback_hours: int = Field(
        default=720, ge=1, le=720,
        description="Look-back window in hours (1 to 720; Defender's maximum, 30 days, is the default)")
    lane: Lane = Field(
        default=DEFAULT_LANE,
        description="Who is asking, for the share of Defender's rate limit the lookup may use: interactive (a "
                    "person is waiting: may use a reserve no other lane touches, with a shorter time budget), "
                    "automation (a playbook; the default) or bulk (a search or sweep over many addresses: "
                    "capped, so playbooks keep flowing)")


class TestConnectivityInput(Model):
    """test_connectivity takes no input."""


class IpStatisticsSummary(Model):
    """The summary of a get_ip_statistics result (empty when it failed)."""

    organization_prevalence: int | None = Field(default=None, ge=0)
    seen_in_org: bool | None = None
    verdict: Verdict | None = None
    ip_scope: Scope | None = Field(default=None, description="Present for every valid address, failed lookups too")
    lane: Lane | None = Field(default=None, description="The lane the lookup ran in (absent only when the lane "
                                                        "input itself was refused)")
    lane_wait_s: float | None = Field(default=None, ge=0, description="Seconds the lookup waited for a rate-limit "
                                                                      "slot; absent when it waited none")


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


class CompleteSignInInput(Model):
    """Inputs of complete_sign_in."""

    wait_s: int = Field(default=0, ge=0, le=MAX_WAIT_S,
                        description="Seconds to keep polling for the person to finish (0: poll once and return)")


class SignInData(Model):
    """Where a delegated sign-in stands."""

    state: SignInState
    user: str | None = Field(default=None, description="The signed-in (or signed-out) person's user name")
    verification_uri: str | None = Field(default=None, description="Where the person signs in")
    user_code: str | None = Field(default=None, description="The code the person types there")
    message: str | None = Field(default=None, description="Entra ID's instructions for the person")
    expires_in_s: int | None = Field(default=None, description="Seconds the code stays valid")
    expires_at: str | None = Field(default=None, description="When the code expires (RFC 3339 UTC)")
    interval_s: int | None = Field(default=None, description="Polling interval Entra ID asks for")
    scopes: list[str] = Field(default=[], description="Delegated permissions in the user's token")


class SignInSummary(Model):
    state: SignInState | None = None
    user: str | None = None
    verification_uri: str | None = None
    user_code: str | None = None
    expires_at: str | None = None


class StartSignInInput(Model):
    """start_sign_in takes no input."""


class SignOutInput(Model):
    """sign_out takes no input."""


class SignInResult(ActionResult):
    """The result of start_sign_in, complete_sign_in and sign_out, as declared in manifest.json."""

    data: list[SignInData] = Field(default=[], max_length=1)  # type: ignore[assignment]
    summary: SignInSummary = Field(default_factory=SignInSummary)  # type: ignore[assignment]

