"""Both API generations map to the same statistics; timestamps normalise to RFC 3339 UTC."""

from datetime import UTC, datetime

import pytest

from connector.errors import UnexpectedResponseError
from connector.interpret import Judgement, interpret
from connector.interpret import describe as describe_judged
from connector.mapping import normalize_timestamp, not_seen, statistics_from_body
from connector.results import OrgStatistics

ANSWERED_AT = datetime(2017, 8, 29, 15, 32, 59, tzinfo=UTC)


def describe(stats: OrgStatistics) -> str:
    return describe_judged(interpret(stats, Judgement(), ANSWERED_AT))

CURRENT = {"ipAddress": "10.209.67.177", "organizationPrevalence": 63515,
           "orgFirstSeen": "2017-07-30T13:36:06Z", "orgLastSeen": "2017-08-29T13:32:59Z"}
LEGACY = {"ipAddress": "10.209.67.177", "orgPrevalence": "63515",
          "orgFirstSeen": "2017-07-30T13:36:06Z", "orgLastSeen": "2017-08-29T13:32:59Z"}
BOTH = {"ipAddress": "10.209.67.177", "orgPrevalence": "63515", "organizationPrevalence": 63515,
        "orgFirstSeen": "2017-07-30T13:36:06.1234567Z", "orgLastSeen": "2017-08-29T13:32:59.0000000Z"}


@pytest.mark.parametrize("body", [CURRENT, LEGACY, BOTH], ids=["current", "legacy", "both"])
def test_every_generation_gives_int_and_string_twin(body: dict) -> None:
    stats = statistics_from_body("10.209.67.177", 48, body)
    assert stats.organizationPrevalence == 63515
    assert stats.orgPrevalence == "63515"
    assert stats.seenInOrg is True
    assert stats.orgFirstSeen.startswith("2017-07-30T13:36:06") and stats.orgFirstSeen.endswith("Z")
    assert stats.orgLastSeen == "2017-08-29T13:32:59Z"
    assert describe(stats) == ("10.209.67.177 (private) is common in the organization: seen on 63515 devices in "
                               "the last 48 hours, first 30 days ago, last 2 hours ago")


def test_prevalence_zero_is_not_seen_with_null_times() -> None:
    stats = statistics_from_body("192.0.2.9", 720, {"organizationPrevalence": 0,
                                                    "orgFirstSeen": None, "orgLastSeen": None})
    assert (stats.seenInOrg, stats.organizationPrevalence, stats.orgFirstSeen) == (False, 0, None)
    assert stats == not_seen("192.0.2.9", 720)
    assert "not seen" in describe(stats) and "720 hours" in describe(stats)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("2023-04-20T13:07:59.6924183Z", "2023-04-20T13:07:59.692418Z"),
        ("2017-07-30T13:36:06Z", "2017-07-30T13:36:06Z"),
        ("2017-07-30T15:36:06+02:00", "2017-07-30T13:36:06Z"),
        ("2017-07-30T13:36:06", "2017-07-30T13:36:06Z"),
        ("2017-07-30T13:36:06.000Z", "2017-07-30T13:36:06Z"),
        (None, None),
    ],
)
def test_timestamps_normalise_to_utc(raw: str | None, normal: str | None) -> None:
    assert normalize_timestamp(raw) == normal


@pytest.mark.parametrize(
    "body",
    [
        {"ipAddress": "10.0.0.1"},
        {"organizationPrevalence": "many"},
        {"organizationPrevalence": -1},
        {"organizationPrevalence": True},
        {"organizationPrevalence": 3, "orgFirstSeen": "yesterday"},
        ["not", "an", "object"],
    ],
)
def test_malformed_bodies_are_unexpected_responses(body: object) -> None:
    with pytest.raises(UnexpectedResponseError):
        statistics_from_body("10.0.0.1", 720, body)


def test_singular_wording() -> None:
    stats = statistics_from_body("10.0.0.1", 1, {"orgPrevalence": "1", "orgFirstSeen": "2017-08-29T14:32:59Z",
                                                  "orgLastSeen": "2017-08-29T14:32:59Z"})
    assert describe(stats) == ("10.0.0.1 (private) is rare in the organization: seen on 1 device in the last 1 hour, "
                               "first 1 hour ago, last 1 hour ago")
