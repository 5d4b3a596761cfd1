"""Defender's facts about one IP, read as an analyst would: the result's data, message and summary.

The judgements themselves (verdict, scope, novelty) are in meaning.py; this module applies them to an
answer at the moment it is given. A cached answer is interpreted afresh from its stored timestamps,
so an hour-old entry says "first seen 4 hours ago", not the "3 hours ago" it said when stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from connector.meaning import age_hours, ago, ip_scope, new_in_window, verdict
from connector.results import IpStatistics, OrgStatistics


class Judgement(NamedTuple):
    """The two thresholds a SOC tunes (manifest.json configuration)."""

    rare_device_threshold: int = 5
    novelty_hours: int = 24


def interpret(facts: OrgStatistics, judgement: Judgement, now: datetime | None = None) -> IpStatistics:
    now = now or datetime.now(UTC)
    scope = ip_scope(facts.ipAddress)
    first_age = age_hours(facts.orgFirstSeen, now)
    return IpStatistics.model_construct(
        **dict(facts),
        verdict=verdict(facts.organizationPrevalence, judgement.rare_device_threshold),
        ipScope=scope.scope,
        ipScopeDetail=scope.detail,
        firstSeenAgeHours=first_age,
        lastSeenAgeHours=age_hours(facts.orgLastSeen, now),
        newInWindow=new_in_window(first_age, facts.lookBackHours, judgement.novelty_hours),
    )


def describe(stats: IpStatistics) -> str:
    """The answer in one sentence, for the result message and the SOAR UI:
    '10.3.0.1 (private) is rare in the organization: seen on 2 devices in the last 720 hours, first 3 hours ago'."""
    hours = stats.lookBackHours
    window = f"the last {hours} hour{'s' if hours != 1 else ''}"
    scope = ip_scope(stats.ipAddress).words()
    if stats.verdict == "not_seen":
        return f"{stats.ipAddress} ({scope}) was not seen on any device in the organization in {window}"
    devices = stats.organizationPrevalence
    sentence = (f"{stats.ipAddress} ({scope}) is {stats.verdict} in the organization: seen on {devices} "
                f"device{'s' if devices != 1 else ''} in {window}")
    if stats.firstSeenAgeHours is not None:
        sentence += f", first {ago(stats.firstSeenAgeHours)}"
        if stats.newInWindow:
            sentence += " (new)"
    if stats.lastSeenAgeHours is not None:
        sentence += f", last {ago(stats.lastSeenAgeHours)}"
    return sentence


def summary_of(stats: IpStatistics) -> dict[str, Any]:
    return {"organization_prevalence": stats.organizationPrevalence, "seen_in_org": stats.seenInOrg,
            "verdict": stats.verdict, "ip_scope": stats.ipScope}


def scope_summary(ip: str | None) -> dict[str, Any]:
    """What a failed lookup of a valid address still knows: its scope (no Defender needed)."""
    return {"ip_scope": ip_scope(ip).scope} if ip else {}
