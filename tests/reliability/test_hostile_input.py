"""Hostile input: any text becomes a canonical address or an invalid_input result, and only canonical
addresses ever reach the wire. Property-based (hypothesis), through the parser alone and through the
real connector against the emulator, with the emulator's request log as the witness.

The oracle is independent of the parser: Python's ``ipaddress`` decides what an address is (IPv4-mapped
IPv6 answered as its IPv4), and the connector additionally refuses zone ids (``%``), which ``ipaddress``
accepts but which must never reach a URL path.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connector import ActionResult, run
from connector.actions import Connector
from connector.inputs import MAX_ITEMS, parse_ip_items, parse_lookback_hours
from connector.settings import Settings
from emulator import Emulator

from .helpers import DOC_IP, api_log, config_for, seen_ips

FAKE_PEM_HEADER = "-----BEGIN " + "PRIVATE KEY-----"  # a header only, split so scanners see no key

SEPARATORS = re.compile(r"[,\s]+")
GENEROUS_LIMITS = ((1_000_000, 60.0),)
PROFILES = {"default": (60, 400), "long": (2_500, 10_000)}
"""Examples per property (through the connector, over the parser alone) in each profile: ``default`` in
``./run.sh test`` (1,040 in all, about 10 s); ``long`` in ``./run.sh test --long`` (30,000 in all: 10,000
through the connector, 20,000 over the parser), selected by MDE_HYPOTHESIS_PROFILE."""
PROFILE = os.environ.get("MDE_HYPOTHESIS_PROFILE") or "default"
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"MDE_HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}, not {PROFILE!r}")
PROPERTY = settings(max_examples=PROFILES[PROFILE][0], deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    database=None)
"""Through the connector: each example is real HTTPS, so a modest number of them by default."""
PARSER_ONLY = settings(max_examples=PROFILES[PROFILE][1], deadline=None, suppress_health_check=[HealthCheck.too_slow],
                       database=None)
EXAMPLES_RUN: Counter[str] = Counter()
"""Examples each property ran, checked against its max_examples when the module ends (a strategy that
ran dry would otherwise fall short silently), and reported in the long profile."""


def counted(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Count each example the property runs under ``name``."""
    def decorate(check: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(check)
        def run(*args: Any, **kwargs: Any) -> None:
            EXAMPLES_RUN[name] += 1
            check(*args, **kwargs)
        return run
    return decorate


@pytest.fixture(scope="module", autouse=True)
def _every_property_ran_its_examples(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    if not EXAMPLES_RUN:
        return  # a selection of tests without properties
    plugins = request.config.pluginmanager
    report, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if PROFILE != "default" and report is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # said even under pytest's output capture
            report.write_line(f"\nhostile-input properties, profile {PROFILE}: {sum(EXAMPLES_RUN.values()):,} "
                              f"examples in {time.monotonic() - started:.0f} s")
            for name, count in sorted(EXAMPLES_RUN.items()):
                report.write_line(f"  {count:>7,}  {name}")
    wanted = {name: PROPERTY.max_examples if name.startswith("connector:") else PARSER_ONLY.max_examples
              for name in EXAMPLES_RUN}
    assert all(EXAMPLES_RUN[name] >= wanted[name] for name in wanted), (dict(EXAMPLES_RUN), wanted)


# -- the oracle ---------------------------------------------------------------------------------------


def oracle_ip(token: str) -> str | None:
    """What one item must become: the canonical address, or None for invalid_input."""
    text = token.strip()
    if not text or "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def oracle_items(value: Any) -> list[tuple[Any, str | None]]:
    """(item, canonical or None) per result the ``ip`` input must produce, duplicates dropped."""
    if isinstance(value, str):
        raw: list[Any] = [p for p in SEPARATORS.split(value) if p] or [value]
    elif isinstance(value, list):
        raw = []
        for element in value:
            if isinstance(element, str) and SEPARATORS.search(element.strip()):
                raw.extend(p for p in SEPARATORS.split(element) if p)
            else:
                raw.append(element)
        raw = raw or [""]
    else:
        raw = [value]
    expected: list[tuple[Any, str | None]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        canonical = oracle_ip(item) if isinstance(item, str) and index < MAX_ITEMS else None
        if canonical is None:
            expected.append((item, None))
        elif canonical not in seen:
            seen.add(canonical)
            expected.append((item, canonical))
    return expected


def oracle_hours(value: Any) -> int | None:
    """The look-back a value must become (None: invalid_input for every item)."""
    if value is None or value == "":
        return 720
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        number = int(value)
    elif isinstance(value, str) and value.strip() and all(c in "0123456789" for c in value.strip()):
        digits = value.strip().lstrip("0") or "0"
        number = int(digits) if len(digits) <= 4 else None
    return number if number is not None and 1 <= number <= 720 else None


# -- strategies ---------------------------------------------------------------------------------------

DIGIT_LOOKALIKES = {
    "fullwidth": 0xFF10, "arabic-indic": 0x0660, "extended-arabic-indic": 0x06F0, "devanagari": 0x0966,
    "mathematical-bold": 0x1D7CE, "bengali": 0x09E6,
}
CONFUSABLE = {
    ".": ["\u3002", "\uff0e", "\uff61", "\u2024", "\u0701", "\u00b7", "\u2e33"],
    ":": ["\uff1a", "\u2236", "\ua789", "\u02d0", "\ufe55"],
    "a": ["\u0430", "\uff41", "\u0251"], "b": ["\u0184", "\uff42"], "c": ["\u0441", "\uff43"],
    "d": ["\u0501", "\uff44"], "e": ["\u0435", "\uff45"], "f": ["\uff46"],
    "0": ["O", "o", "\u041e"], "1": ["l", "I", "\u0399", "\u00b9"], "2": ["\u00b2"], "3": ["\u00b3"],
}
for _name, _base in DIGIT_LOOKALIKES.items():
    for _digit in "0123456789":
        CONFUSABLE.setdefault(_digit, []).append(chr(_base + int(_digit)))

INJECTIONS = [
    "/../machines", "/..%2fmachines", "/stats?lookBackHours=1", "?", "#", "#frag", "&x=1", "/", "\\", "%2e",
    "%2F", "%00", "\x00", "\r\nX-Injected: 1", "\n", " HTTP/1.1", "@evil.example", ":443", "/24", "/32",
    "%25eth0", "%eth0", ";", "'", "\"", "<script>", "${jndi:ldap://x}", "..", "...", "\u202e", "\u200b",
    "\ufeff", "\u00ad",
]

ipv4 = st.ip_addresses(v=4)
ipv6 = st.ip_addresses(v=6)
whitespace = st.sampled_from(["", " ", "\t", "  ", "\u3000", "\u00a0", "\n"])


@st.composite
def valid_renderings(draw: st.DrawFn) -> str:
    """Ways people and tools write a real address, all of which must be accepted."""
    address = draw(st.one_of(ipv4, ipv6))
    forms = [str(address), address.exploded]
    if isinstance(address, ipaddress.IPv6Address):
        forms += [address.exploded.upper(), str(address).upper()]
    else:
        mapped = ipaddress.IPv6Address(f"::ffff:{address}")
        forms += [f"::ffff:{address}", f"::FFFF:{address}", mapped.exploded, f"0:0:0:0:0:ffff:{address}"]
    return draw(whitespace) + draw(st.sampled_from(forms)) + draw(whitespace)


@st.composite
def injected(draw: st.DrawFn) -> str:
    base = str(draw(st.one_of(ipv4, ipv6)))
    injection = draw(st.sampled_from(INJECTIONS))
    where = draw(st.integers(0, len(base)))
    return base[:where] + injection + base[where:]


@st.composite
def lookalikes(draw: st.DrawFn) -> str:
    """A real address with at least one character swapped for a Unicode look-alike."""
    base = str(draw(st.one_of(ipv4, ipv6)))
    positions = [i for i, c in enumerate(base) if c in CONFUSABLE]
    chosen = draw(st.lists(st.sampled_from(positions), min_size=1, max_size=4, unique=True))
    chars = list(base)
    for i in chosen:
        chars[i] = draw(st.sampled_from(CONFUSABLE[chars[i]]))
    return "".join(chars)


@st.composite
def percent_encoded(draw: st.DrawFn) -> str:
    """All of an address percent-encoded, or one of its characters (upper- or lower-case hex)."""
    base = str(draw(st.one_of(ipv4, ipv6)))
    if draw(st.booleans()):
        return "".join(f"%{ord(c):02X}" for c in base)
    where = draw(st.integers(0, len(base) - 1))
    encoded = quote(base[where], safe="") if draw(st.booleans()) else f"%{ord(base[where]):02x}"
    return base[:where] + encoded + base[where + 1:]


@st.composite
def scoped_ipv6(draw: st.DrawFn) -> str:
    return f"{draw(ipv6)}%{draw(st.from_regex(r'[a-z0-9]{1,8}', fullmatch=True))}"


hostile_items = st.one_of(injected(), lookalikes(), percent_encoded(), scoped_ipv6(),
                          st.text(max_size=40), st.sampled_from(["", " ", "\t\n", ",", ", ,", "\u3000"]))
any_item = st.one_of(valid_renderings(), hostile_items)
separator = st.sampled_from([",", ", ", " ", "\n", "\t", " ,\n"])


@st.composite
def ip_texts(draw: st.DrawFn) -> str:
    """One string as a form or a playbook would send it: items joined by commas or whitespace."""
    items = draw(st.lists(any_item, min_size=1, max_size=5))
    return draw(separator).join(items)


non_string_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=2),
    max_leaves=8,
)
lookback_values = st.one_of(
    st.integers(-1000, 2000), st.integers(), st.floats(), st.booleans(), st.none(),
    st.text(max_size=6), st.from_regex(r"\s?0{0,3}[0-9]{1,4}\s?", fullmatch=True),
    st.sampled_from(["", "48", " 48 ", "0", "721", "720", "1", "+5", "-1", "5.0", "1e2", "0x10", "\u0664\u0668",
                     "\uff14\uff18", "48h", "9" * 5000]),
    st.lists(st.integers(1, 720), max_size=2), st.just({"hours": 1}),
)


WIRE_EXAMPLES = [
    "10.209.67.177", " 8.8.8.8 ", "192.0.2.1", "::ffff:198.51.100.7", "::FFFF:203.0.113.9", "1.1.1.1/../machines",
    "0:0:0:0:0:ffff:192.0.2.77", "\u3000100.64.0.1\u00a0", "2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0002",
    "fe80::1%eth0", "2001:DB8::3", "::1", "100.100.100.100", "255.255.255.255", "1.2.3.4?x", "fd00::abcd",
    "2001:db8:0:0:1:0:0:1", "172.16.0.1", "\uff11.1.1.2", "10.0.0.1", "2a00:1450:4001:81b::200e", "%31.1.1.3",
    "2001:db8::ffff:1", "203.0.113.200",
]
"""Mixed renderings for explicit examples: 20 real addresses among look-alikes and injections."""
WIRE_ADDRESSES = {canonical for canonical in map(oracle_ip, WIRE_EXAMPLES) if canonical is not None}
assert len(WIRE_ADDRESSES) == 20, sorted(WIRE_ADDRESSES)


# -- the connector under test --------------------------------------------------------------------------


@contextmanager
def live_connector(make_emulator: Callable[..., Emulator], state_dir: Path) -> Iterator[tuple[Emulator, Connector]]:
    """One emulator and one Connector for a whole property test: generous limits, no result cache."""
    emu = make_emulator(rate_limits=GENEROUS_LIMITS)
    settings_ = Settings.load(config_for(emu, rate_limit_time_scale=1000, timeout_s=10, item_budget_s=30))
    with Connector(settings_, state_dir=state_dir) as connector:
        yield emu, connector


def sent_paths(emu: Emulator, since: int) -> list[str]:
    return [e["path"] for e in emu.request_log()[since:] if e["route"] == "api"]


def assert_matches_oracle(results: list[ActionResult], value: Any, hours: int) -> list[str]:
    """Each result as the oracle says; returns the API paths that must have been requested."""
    expected = oracle_items(value)
    assert len(results) == len(expected), (value, [r.parameters for r in results])
    paths = []
    for result, (item, canonical) in zip(results, expected, strict=True):
        if canonical is None:
            assert result.status == "failed" and result.error is not None, (item, result)
            assert result.error.category == "invalid_input", (item, result.error)
            assert result.data == []
            message = result.message
            assert message.isascii() and message.isprintable() and len(message) < 400, message
            if isinstance(item, str):
                assert result.parameters["ip"] == item.strip()
        else:
            assert result.status == "success", (item, result.error)
            assert result.data[0]["ipAddress"] == canonical == result.parameters["ip"]
            paths.append(f"/api/ips/{canonical}/stats?lookBackHours={hours}")
    return paths


# -- the parser alone (fast, many examples) ----------------------------------------------------------------


@PARSER_ONLY
@given(st.one_of(ip_texts(), st.text(), st.lists(st.one_of(any_item, non_string_json), max_size=6)))
@counted("parser: any input")
def test_the_parser_agrees_with_the_oracle_on_any_input(value: Any) -> None:
    items = parse_ip_items(value)
    expected = oracle_items(value)
    assert [item.ip for item in items] == [canonical for _, canonical in expected]
    for item in items:
        assert (item.ip is None) == (item.error is not None)
        if item.ip is not None:
            assert re.fullmatch(r"[0-9a-f.:]+", item.ip), item.ip  # nothing that could alter a URL


@PARSER_ONLY
@given(lookback_values)
@counted("parser: look-backs")
def test_the_look_back_parser_agrees_with_the_oracle(value: Any) -> None:
    expected = oracle_hours(value)
    if expected is None:
        with pytest.raises(Exception) as refused:
            parse_lookback_hours(value)
        assert type(refused.value).__name__ == "InvalidInputError"
    else:
        assert parse_lookback_hours(value) == expected


# -- through the connector, against the emulator -------------------------------------------------------------


def test_any_text_becomes_canonical_addresses_and_nothing_else_is_sent(make_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with live_connector(make_emulator, tmp_path) as (emu, connector):

        @PROPERTY
        @given(ip_texts())
        @example(", ".join(WIRE_EXAMPLES[:8]))
        @example("\n".join(WIRE_EXAMPLES[8:16]))
        @example(" \t".join(WIRE_EXAMPLES[16:]))
        @counted("connector: any text")
        def check(text: str) -> None:
            since = len(emu.request_log())
            results = connector.get_ip_statistics({"ip": text, "lookback_hours": 24})
            paths = assert_matches_oracle(results, text, 24)
            assert sent_paths(emu, since) == paths
            if not paths:
                assert emu.request_log()[since:] == [], "a request left for input that is not an address"

        check()
        # The explicit examples alone put 20 addresses on the wire; the random ones add more. This is a
        # guard against a vacuous run (every example refused), not a statistical bet on the strategy.
        assert len(api_log(emu)) >= len(WIRE_ADDRESSES), "the valid addresses never reached the wire"


def test_hostile_items_are_refused_and_only_addresses_are_sent(make_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with live_connector(make_emulator, tmp_path) as (emu, connector):

        @PROPERTY
        @given(st.lists(hostile_items, min_size=1, max_size=4))
        @counted("connector: hostile items")
        def check(items: list[str]) -> None:
            since = len(emu.request_log())
            results = connector.get_ip_statistics({"ip": items, "lookback_hours": 24})
            paths = assert_matches_oracle(results, items, 24)
            assert sent_paths(emu, since) == paths

        check()


def test_non_string_json_is_invalid_input_item_by_item(make_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with live_connector(make_emulator, tmp_path) as (emu, connector):

        @PROPERTY
        @given(non_string_json)
        @counted("connector: non-string JSON")
        def check(value: Any) -> None:
            results = connector.get_ip_statistics({"ip": value})
            expected = len(value) if isinstance(value, list) and value else 1
            assert len(results) == expected
            assert all(r.error is not None and r.error.category == "invalid_input" for r in results)
            assert all(isinstance(r.parameters["ip"], str) and len(r.parameters["ip"]) <= 62 for r in results)

        check()
        assert emu.request_log() == []


def test_any_look_back_is_a_whole_number_of_hours_from_1_to_720_or_refused(make_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with live_connector(make_emulator, tmp_path) as (emu, connector):

        @PROPERTY
        @given(lookback_values)
        @counted("connector: look-backs")
        def check(value: Any) -> None:
            since = len(emu.request_log())
            [result] = connector.get_ip_statistics({"ip": DOC_IP, "lookback_hours": value})
            expected = oracle_hours(value)
            if expected is None:
                assert result.error is not None and result.error.category == "invalid_input", (value, result)
                assert "lookback_hours" in result.message and len(result.message) < 400
                assert emu.request_log()[since:] == []
            else:
                assert result.status == "success", (value, result.error)
                assert result.data[0]["lookBackHours"] == expected
                assert sent_paths(emu, since) == [f"/api/ips/{DOC_IP}/stats?lookBackHours={expected}"]

        check()


# -- sizes and emptiness -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", " ", "\t\n ", ",", " , ,", "\u3000", [], [""], ["  "], [",", ""]],
                         ids=repr)
def test_empty_and_whitespace_input_is_invalid_input_without_a_request(emulator, tmp_path: Path, value: Any) -> None:  # type: ignore[no-untyped-def]
    results = run("get_ip_statistics", {"ip": value}, config_for(emulator), state_dir=tmp_path)
    assert results and all(r.error is not None and r.error.category == "invalid_input" for r in results)
    assert emulator.request_log() == []


def test_over_the_item_cap_every_item_is_answered_and_the_excess_is_not_looked_up(emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    extra = seen_ips(emulator, 4)[1:]
    items = [DOC_IP] * MAX_ITEMS + extra
    results = run("get_ip_statistics", {"ip": items, "lookback_hours": 24}, config_for(emulator), state_dir=tmp_path)
    assert [r.parameters["ip"] for r in results] == [DOC_IP, *extra]  # the repeats are one lookup
    assert results[0].status == "success"
    assert all(r.error is not None and r.error.code == "TooManyItems" for r in results[1:])
    assert [e["path"] for e in api_log(emulator)] == [f"/api/ips/{DOC_IP}/stats?lookBackHours=24"]


def test_a_huge_comma_separated_string_is_capped_the_same_way(emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = ",".join(["not-an-ip"] * MAX_ITEMS + [DOC_IP, "::1"])
    results = run("get_ip_statistics", {"ip": text}, config_for(emulator), state_dir=tmp_path)
    assert len(results) == MAX_ITEMS + 2
    assert {r.error.code for r in results[:MAX_ITEMS] if r.error} == {"InvalidIpAddress"}
    assert [r.error.code for r in results[MAX_ITEMS:] if r.error] == ["TooManyItems", "TooManyItems"]
    assert emulator.request_log() == []


def test_a_megabyte_of_text_is_one_invalid_item_with_a_bounded_message(emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    [result] = run("get_ip_statistics", {"ip": "1" * (1 << 20)}, config_for(emulator), state_dir=tmp_path)
    assert result.error is not None and result.error.category == "invalid_input"
    assert len(result.message) < 400
    assert emulator.request_log() == []


def test_a_long_batch_is_answered_in_order(make_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=GENEROUS_LIMITS)
    ips = [ip for ip in emu.org.sample_ips(150, seen=True)] + emu.org.sample_ips(50, seen=False)
    canonical = [oracle_ip(ip) for ip in ips]
    assert len(set(canonical)) == len(canonical)
    results = run("get_ip_statistics", {"ip": ips, "lookback_hours": 720},
                  config_for(emu, rate_limit_time_scale=1000), state_dir=tmp_path)
    assert [r.parameters["ip"] for r in results] == canonical
    assert all(r.status == "success" for r in results)
    assert len(api_log(emu)) == len(ips)


# -- configuration: wrong fields are named before any traffic --------------------------------------------------

ENCRYPTED_KEY_MARKER = "ENCRYPTED"


def _encrypted_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(b"passphrase")).decode()


BAD_CONFIGURATION: list[tuple[str, Callable[[Emulator, Path], dict[str, Any]], str]] = [
    ("api_url_http", lambda emu, tmp: {"api_url": emu.api_url.replace("https://", "http://")}, "api_url"),
    ("login_url_http", lambda emu, tmp: {"login_url": emu.login_url.replace("https://", "http://")}, "login_url"),
    ("api_url_without_host", lambda emu, tmp: {"api_url": "https://"}, "api_url"),
    ("api_url_javascript", lambda emu, tmp: {"api_url": "javascript:alert(1)"}, "api_url"),
    ("api_url_with_query", lambda emu, tmp: {"api_url": emu.api_url + "/?x=1"}, "api_url"),
    ("login_url_ftp", lambda emu, tmp: {"login_url": "ftp://127.0.0.1/"}, "login_url"),
    ("api_url_with_credentials", lambda emu, tmp: {"api_url": emu.api_url.replace("https://", "https://u:pw@")},
     "api_url"),
    ("tenant_id_not_a_guid", lambda emu, tmp: {"tenant_id": "not a tenant"}, "tenant_id"),
    ("tenant_id_path_traversal", lambda emu, tmp: {"tenant_id": "../../common"}, "tenant_id"),
    ("tenant_id_guid_with_junk", lambda emu, tmp: {"tenant_id": emu.tenant_id + "x"}, "tenant_id"),
    ("tenant_id_single_label", lambda emu, tmp: {"tenant_id": "contoso"}, "tenant_id"),
    ("client_id_not_a_guid", lambda emu, tmp: {"client_id": "my-app"}, "client_id"),
    ("private_key_not_pem", lambda emu, tmp: {**_cert(emu), "private_key": FAKE_PEM_HEADER + "\nnope\n"
                                              "-----END PRIVATE KEY-----\n"}, "private_key"),
    ("private_key_encrypted", lambda emu, tmp: {**_cert(emu), "private_key": _encrypted_key()}, "private_key"),
    ("public_certificate_not_pem", lambda emu, tmp: {**_cert(emu, chain=True), "public_certificate": "junk"},
     "public_certificate"),
    ("thumbprint_not_hex", lambda emu, tmp: {**_cert(emu), "thumbprint": "zz" * 20}, "thumbprint"),
    ("ca_bundle_missing", lambda emu, tmp: {"ca_bundle": str(tmp / "absent.pem")}, "ca_bundle"),
    ("ca_bundle_is_a_directory", lambda emu, tmp: {"ca_bundle": str(tmp)}, "ca_bundle"),
    ("ca_bundle_not_pem", lambda emu, tmp: {"ca_bundle": _write(tmp / "bundle.bin", b"\x00\xff" * 64)}, "ca_bundle"),
    ("ca_bundle_is_a_key", lambda emu, tmp: {"ca_bundle": _write(tmp / "key.pem", _encrypted_key().encode())},
     "ca_bundle"),
    ("proxy_socks", lambda emu, tmp: {"proxy": "socks5://127.0.0.1:1080"}, "proxy"),
    ("timeout_negative", lambda emu, tmp: {"timeout_s": -1}, "timeout_s"),
]


def _cert(emu: Emulator, chain: bool = False) -> dict[str, Any]:
    config = emu.connector_config(auth="certificate_chain" if chain else "certificate")
    return {"client_secret": None, **{k: config[k] for k in ("private_key", "thumbprint", "public_certificate")
                                      if k in config}}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(("name", "change", "field"), BAD_CONFIGURATION, ids=[c[0] for c in BAD_CONFIGURATION])
def test_bad_configuration_names_the_field_before_any_traffic(emulator, tmp_path: Path, name: str,  # type: ignore[no-untyped-def]
                                                              change: Callable[[Emulator, Path], dict[str, Any]],
                                                              field: str) -> None:
    changed = change(emulator, tmp_path)
    config = {k: v for k, v in {**config_for(emulator), **changed}.items() if v is not None}
    lookups = run("get_ip_statistics", {"ip": [DOC_IP, "not-an-ip"]}, config, state_dir=tmp_path / "state")
    [connectivity] = run("test_connectivity", {}, config, state_dir=tmp_path / "state")
    assert [r.error.category if r.error else None for r in lookups] == ["configuration", "invalid_input"]
    for result in (lookups[0], connectivity):
        assert result.error is not None and result.error.category == "configuration"
        assert f"{field}:" in result.message, result.message
        for value in changed.values():
            if isinstance(value, str) and len(value) > 8:
                assert value not in result.message, "the message echoes the submitted value"
    assert emulator.request_log() == [], "configuration must be refused before any traffic"
