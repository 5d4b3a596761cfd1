"""The standard result object: one per input item, the shape playbooks rely on.

The models here are the single definition of the result; manifest.json's output schemas are generated
from them (manifest.py), so the declaration and the code cannot drift apart. The code builds every
result from values it made itself, so it builds them unchecked (``model_construct``): a fresh action
process builds no result validator at all. Each action's typed result (IpStatisticsResult, ...) exists
for the declaration only, and is defined in connector/declared.py when something asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from connector.errors import Category, ConnectorError
from connector.meaning import Scope, Verdict
from connector.models import Model, declared_elsewhere, to_builtins

if TYPE_CHECKING:
    from connector.declared import ConnectivityChecks as ConnectivityChecks
    from connector.declared import ConnectivityResult as ConnectivityResult
    from connector.declared import ConnectivitySummary as ConnectivitySummary
    from connector.declared import IpStatisticsResult as IpStatisticsResult
    from connector.declared import IpStatisticsSummary as IpStatisticsSummary

Status = Literal["success", "failed"]


class ErrorInfo(Model):
    """Why a result failed, in terms a playbook can branch on."""

    category: Category
    http_status: int | None = None
    code: str | None = None
    message: str
    correlation_id: str | None = None
    retry_after_s: float | None = None

    @classmethod
    def from_error(cls, error: ConnectorError) -> ErrorInfo:
        return cls.model_construct(
            category=error.category,
            http_status=error.http_status,
            code=error.code,
            message=error.message,
            correlation_id=error.correlation_id,
            retry_after_s=error.retry_after_s,
        )


class OrgStatistics(Model):
    """One IP's organization statistics as Defender reported them, with Defender's own field names.

    Both prevalence fields are always present whatever generation of the API answered, so that
    playbooks written for either (the official Splunk SOAR app reads both) keep working. This is what
    the result cache keeps: the facts, not what they meant at the time (see IpStatistics).
    """

    ipAddress: str = Field(description="The IP address, in canonical form")
    organizationPrevalence: int = Field(ge=0, description="Distinct devices that communicated with the IP")
    orgPrevalence: str = Field(description="The same count as a string, for playbooks written for the older API")
    orgFirstSeen: str | None = Field(
        description="First communication within the look-back window (not ever), RFC 3339 UTC; null if not seen")
    orgLastSeen: str | None = Field(description="Last communication in the window, RFC 3339 UTC; null if not seen")
    seenInOrg: bool = Field(description="True when at least one device communicated with the IP in the window")
    lookBackHours: int = Field(ge=1, le=720, description="The look-back window the figures cover")


class IpStatistics(OrgStatistics):
    """The statistics with what they mean (connector/meaning.py), judged when the answer is given."""

    verdict: Verdict = Field(description="not_seen (0 devices), rare (at most rare_device_threshold devices) "
                                         "or common")
    ipScope: Scope = Field(description="The address's scope: private, public, loopback, link_local, multicast, "
                                       "shared (100.64.0.0/10) or reserved")
    ipScopeDetail: str | None = Field(description="Which reserved range (documentation, benchmarking, unspecified, "
                                                  "...); null otherwise")
    firstSeenAgeHours: float | None = Field(ge=0, description="Hours from orgFirstSeen to the answer; null if not seen")
    lastSeenAgeHours: float | None = Field(ge=0, description="Hours from orgLastSeen to the answer; null if not seen")
    newInWindow: bool | None = Field(
        description="True when first seen within the last novelty_hours of a longer look-back window; null when "
                    "the window is not longer than novelty_hours (too short to tell)")


class ActionResult(Model):
    """One answer for one input item."""

    action: str
    status: Status
    message: str
    parameters: dict[str, Any]
    data: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    error: ErrorInfo | None = None
    cached: bool = Field(default=False, description="True when answered from the result cache")
    cache_age_s: float | None = Field(default=None, description="Age of the cached answer in seconds")
    warnings: list[str] = Field(default=[], description="What went wrong around this answer without spoiling it "
                                "(e.g. a damaged state file set aside and started afresh); empty when nothing did")
    degraded: bool = Field(default=False, description="True when the answer was given without the shared state "
                           "store (Redis unreachable: this host's own state was used instead; warnings say why)")

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        dumped: dict[str, Any] = to_builtins(self)
        return dumped

    def replace(self, **changes: Any) -> ActionResult:
        """A copy with some fields changed."""
        return self.model_copy(update=changes)

    @classmethod
    def failure(cls, action: str, parameters: dict[str, Any], error: ConnectorError,
                summary: dict[str, Any] | None = None) -> ActionResult:
        return cls.model_construct(
            action=action,
            status="failed",
            message=error.message,
            parameters=parameters,
            summary=summary or {},
            error=ErrorInfo.from_error(error),
        )


__getattr__ = declared_elsewhere(__name__, ("IpStatisticsSummary", "IpStatisticsResult", "ConnectivityChecks",
                                            "ConnectivitySummary", "ConnectivityResult"))
"""Each action's typed result, defined on first use (connector/declared.py)."""
