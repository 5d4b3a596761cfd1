"""The lanes' arithmetic: each lane's share of a window, rounded so that tiny limits still work; the
lane input; an interactive lookup's own time budget; the command line's default lane."""

from __future__ import annotations

import io
from typing import Any

import pytest

from connector.cli import default_lane
from connector.errors import InvalidInputError
from connector.inputs import parse_lane
from connector.lanes import AUTOMATION, BULK, INTERACTIVE, Shares
from connector.ratelimit import Budget, Window, wait_ms
from connector.settings import Settings


@pytest.mark.parametrize(("limit", "reserve", "bulk", "shares"), [
    (100, 10, 50, (100, 90, 50)),      # Defender's minute, the defaults
    (1500, 10, 50, (1500, 1350, 750)),  # Defender's hour
    (5, 10, 50, (5, 4, 2)),            # the reserve rounds up to a whole call, the bulk cap down
    (3, 10, 10, (3, 2, 1)),            # the bulk cap is never below one call
    (1, 10, 50, (1, 1, 1)),            # one call cannot be split: no reserve, automation keeps it
    (2, 50, 100, (2, 1, 1)),           # bulk never reaches into the reserve
    (4, 50, 100, (4, 2, 2)),
    (10, 0, 100, (10, 10, 10)),        # lanes off
])
def test_each_lanes_share_of_a_window(limit: int, reserve: int, bulk: int, shares: tuple[int, int, int]) -> None:
    assert Shares.of(limit, reserve, bulk) == shares


def test_a_lane_checks_only_the_caps_that_bind_it() -> None:
    shares = Shares(100, 90, 50)
    assert shares.caps(INTERACTIVE) == [(INTERACTIVE, 100)]
    assert shares.caps(AUTOMATION) == [(INTERACTIVE, 100), (AUTOMATION, 90)]
    assert shares.caps(BULK) == [(INTERACTIVE, 100), (AUTOMATION, 90), (BULK, 50)]
    assert Shares(100, 100, 100).caps(BULK) == [(INTERACTIVE, 100)]  # lanes off: one look-up, as before


def log_of(*calls: tuple[int, int]) -> Any:
    """nth_newest over a log of (time, lane code) calls."""
    def nth_newest(n: int, counted: int) -> int | None:
        stamps = sorted((stamp for stamp, lane in calls if lane >= counted), reverse=True)
        return stamps[n - 1] if len(stamps) >= n else None
    return nth_newest


def test_the_wait_is_until_the_call_that_fills_the_lanes_cap_leaves() -> None:
    window = Window(4, 1000, shared=3, bulk=2)
    log = log_of((4100, AUTOMATION), (4200, BULK), (4300, BULK), (4400, INTERACTIVE))
    assert wait_ms([window], 5000, log, INTERACTIVE) == 100  # four in the window: until 4100 leaves
    assert wait_ms([window], 5000, log, AUTOMATION) == 100  # three of automation and bulk: until 4100 leaves
    assert wait_ms([window], 5000, log, BULK) == 200  # two of bulk: until 4200 leaves
    assert wait_ms([window], 5150, log, INTERACTIVE) == wait_ms([window], 5150, log, AUTOMATION) == 0
    assert wait_ms([window], 5150, log, BULK) == 50


def test_lane_shares_that_the_other_window_implies_do_not_keep_it() -> None:
    assert len(Budget(per_minute=10, per_hour=1500, reserve_percent=10, bulk_percent=50).rates()) == 1
    assert len(Budget(per_minute=100, per_hour=1500, reserve_percent=10, bulk_percent=50).rates()) == 2


@pytest.mark.parametrize(("given", "lane"), [(None, "automation"), ("", "automation"), ("bulk", "bulk"),
                                             (" Interactive ", "interactive"), ("AUTOMATION", "automation")])
def test_the_lane_input(given: Any, lane: str) -> None:
    assert parse_lane(given) == lane


@pytest.mark.parametrize("given", ["urgent", "inter active", 1, ["bulk"], True])
def test_a_bad_lane_is_refused_naming_the_lanes(given: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_lane(given)
    assert "interactive" in caught.value.message and "bulk" in caught.value.message


def settings(**values: Any) -> Settings:
    return Settings.load({"tenant_id": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000001",
                          "client_secret": "s3cret-for-unit-tests", **values})


def test_an_interactive_lookup_has_its_own_shorter_budget() -> None:
    assert settings().budget_s("interactive") == 15.0
    assert settings().budget_s("automation") == settings().budget_s("bulk") == 120.0
    assert settings(item_budget_s=5).budget_s("interactive") == 5.0  # never longer than every lookup's


def test_the_lane_settings_are_checked() -> None:
    from connector.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="interactive_reserve_percent"):
        settings(interactive_reserve_percent=60)
    with pytest.raises(ConfigurationError, match="bulk_max_percent"):
        settings(bulk_max_percent=0)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_command_lines_lane_is_interactive_on_a_terminal_and_automation_in_a_pipe() -> None:
    assert default_lane(_Terminal()) == "interactive"
    assert default_lane(io.StringIO()) == "automation"
