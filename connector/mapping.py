"""Turning Defender's answers, of either API generation, into the standard result's data.

Two generations exist in the wild (mde-api.md): the current one sends ``organizationPrevalence`` as
an integer and answers a never-seen IP with 200 and prevalence 0; the older one sends
``orgPrevalence`` as a string and answers 404. Some responses carry both fields, and timestamps
with seven fractional digits. All of them become the same :class:`OrgStatistics`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.errors import UnexpectedResponseError
from connector.results import OrgStatistics

_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,12}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?$"
)


def normalize_timestamp(value: Any) -> str | None:
    """An RFC 3339 UTC timestamp (``...Z``, microseconds at most) from any form Defender sends.

    A missing zone is read as UTC, which is what the service means. Fractions beyond microseconds
    (Defender sends seven digits) are truncated rather than rounded, so a time never moves forward.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnexpectedResponseError(f"A timestamp in the response is not text: {type(value).__name__}.")
    match = _TIMESTAMP.match(value.strip())
    if not match:
        raise UnexpectedResponseError("A timestamp in the response is not in ISO 8601 form.")
    micro = int((match["fraction"] or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}").replace(microsecond=micro)
    except ValueError:
        raise UnexpectedResponseError("A timestamp in the response is not a valid date.") from None
    zone = match["zone"]
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    moment = moment.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise UnexpectedResponseError(f"{field} in the response is not a count.")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        count = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    else:
        raise UnexpectedResponseError(f"{field} in the response is not a whole number.")
    if count < 0:
        raise UnexpectedResponseError(f"{field} in the response is negative.")
    return count


def prevalence_of(body: dict[str, Any]) -> int:
    """The prevalence, whichever field the API generation used (the current one wins if both)."""
    if body.get("organizationPrevalence") is not None:
        return _count(body["organizationPrevalence"], "organizationPrevalence")
    if body.get("orgPrevalence") is not None:
        return _count(body["orgPrevalence"], "orgPrevalence")
    raise UnexpectedResponseError(
        "The response has neither organizationPrevalence nor orgPrevalence: the API answered "
        "something other than IP statistics (check api_url)."
    )


def statistics_from_body(ip: str, lookback_hours: int, body: Any) -> OrgStatistics:
    """The statistics in a 200 answer; prevalence 0 is the current API's way of saying 'not seen'."""
    if not isinstance(body, dict):
        raise UnexpectedResponseError("The response is JSON but not an object.")
    prevalence = prevalence_of(body)
    seen = prevalence > 0
    return OrgStatistics.model_construct(
        ipAddress=ip,
        organizationPrevalence=prevalence,
        orgPrevalence=str(prevalence),
        orgFirstSeen=normalize_timestamp(body.get("orgFirstSeen")) if seen else None,
        orgLastSeen=normalize_timestamp(body.get("orgLastSeen")) if seen else None,
        seenInOrg=seen,
        lookBackHours=lookback_hours,
    )


def not_seen(ip: str, lookback_hours: int) -> OrgStatistics:
    """The older API's 404: the IP was not seen in the organization in the window."""
    return OrgStatistics.model_construct(
        ipAddress=ip,
        organizationPrevalence=0,
        orgPrevalence="0",
        orgFirstSeen=None,
        orgLastSeen=None,
        seenInOrg=False,
        lookBackHours=lookback_hours,
    )
