"""The input parser: canonical addresses or invalid_input, never anything that could alter a URL."""

import pytest

from connector.errors import Category
from connector.inputs import MAX_ITEMS, canonical_ip, parse_ip_items, parse_lookback_hours


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10.209.67.177", "10.209.67.177"),
        ("  10.209.67.177\t", "10.209.67.177"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::1", "::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("FE80::1", "fe80::1"),
    ],
)
def test_valid_addresses_become_canonical(text: str, canonical: str) -> None:
    assert canonical_ip(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "1.1.1.1/../machines", "1.1.1.1/32", "10.0.0.0/8", "fe80::1%eth0", "1.2.3.4:443", "[::1]",
        "1.1.1.1?x=1", "1.1.1.1#frag", "%31.1.1.1", "1.1.1.1%2f..", "example.com", "256.1.1.1",
        "010.1.1.1", "1.1.1", "\u0661.\u0661.\u0661.\u0661", "\uff11.\uff11.\uff11.\uff11", "1.1.1.1\x00", "", "   ",
    ],
)
def test_anything_else_is_refused_with_the_item_named(text: str) -> None:
    [item] = parse_ip_items([text])
    assert item.ip is None
    assert item.error is not None and item.error.category is Category.INVALID_INPUT
    if text.strip():
        assert text.strip()[:3].encode("unicode_escape").decode()[:3] in item.error.message


def test_lists_are_deduplicated_in_order_and_bad_items_stand_alone() -> None:
    items = parse_ip_items(["10.0.0.2", "bad", "10.0.0.1", "10.0.0.2", "::ffff:10.0.0.1", 7, None])
    assert [i.ip for i in items] == ["10.0.0.2", None, "10.0.0.1", None, None]
    assert [i.raw for i in items][1] == "bad"
    assert "int" in items[3].error.message and "NoneType" in items[4].error.message


def test_comma_and_whitespace_separated_strings_are_split() -> None:
    assert [i.ip for i in parse_ip_items("10.0.0.1, 10.0.0.2\n2001:db8::1 ,10.0.0.1")] == [
        "10.0.0.1", "10.0.0.2", "2001:db8::1"]


def test_more_items_than_the_limit_are_refused_not_dropped() -> None:
    raw = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(MAX_ITEMS + 3)]
    items = parse_ip_items(raw)
    assert len(items) == MAX_ITEMS + 3
    assert all(i.ip for i in items[:MAX_ITEMS])
    assert all(i.error and i.error.code == "TooManyItems" for i in items[MAX_ITEMS:])


@pytest.mark.parametrize(("value", "hours"), [(None, 720), ("", 720), (1, 1), (720, 720), ("48", 48), (48.0, 48)])
def test_lookback_hours_accepts_whole_hours_in_range(value: object, hours: int) -> None:
    assert parse_lookback_hours(value) == hours


@pytest.mark.parametrize("value", [0, 721, -1, 1.5, "1.5", "abc", True, "٤٨", [48], {"h": 1}])
def test_lookback_hours_refuses_the_rest(value: object) -> None:
    with pytest.raises(Exception, match="lookback_hours") as info:
        parse_lookback_hours(value)
    assert info.value.category is Category.INVALID_INPUT
