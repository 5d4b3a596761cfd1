"""The three response generations: current, legacy and both."""

from __future__ import annotations

import re
from datetime import datetime

from emulator import Emulator
from emulator.testing import https_session

SEVEN_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UP_TO_SEVEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$")


def _get(emu: Emulator, ip: str, hours: int = 720):  # type: ignore[no-untyped-def]
    return https_session(emu.ca_path).get(f"{emu.api_url}/api/ips/{ip}/stats?lookBackHours={hours}",
                                          headers={"Authorization": f"Bearer {emu.issue_token('reader')}"})


def _parse(text: str) -> datetime:
    """What a tolerant client does: keep at most six fractional digits."""
    head, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


def test_current_sends_an_integer_prevalence(emulator: Emulator) -> None:
    answer = _get(emulator, "10.209.67.177", 48)
    body = answer.json()
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert set(body) == {"@odata.context", "ipAddress", "organizationPrevalence", "orgFirstSeen", "orgLastSeen"}
    assert body["@odata.context"].endswith("$metadata#microsoft.windowsDefenderATP.api.InOrgIPStats")
    assert isinstance(body["organizationPrevalence"], int)
    prevalence, first, last = emulator.org.stats("10.209.67.177", 48)
    assert body["organizationPrevalence"] == prevalence > 0
    assert UP_TO_SEVEN.match(body["orgFirstSeen"]) and UP_TO_SEVEN.match(body["orgLastSeen"])
    assert (_parse(body["orgFirstSeen"]), _parse(body["orgLastSeen"])) == (first, last)


def test_current_answers_a_never_seen_ip_with_prevalence_zero(emulator: Emulator) -> None:
    unseen = emulator.org.sample_ips(1, seen=False)[0]
    answer = _get(emulator, unseen)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["organizationPrevalence"], body["orgFirstSeen"], body["orgLastSeen"]) == (0, None, None)


def test_legacy_sends_the_prevalence_as_a_string_under_its_old_name(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(generation="legacy")
    body = _get(emu, "10.209.67.177", 48).json()
    assert set(body) == {"@odata.context", "ipAddress", "orgPrevalence", "orgFirstSeen", "orgLastSeen"}
    prevalence, first, _ = emu.org.stats("10.209.67.177", 48)
    assert body["orgPrevalence"] == str(prevalence)
    assert WHOLE_SECONDS.match(body["orgFirstSeen"]) and WHOLE_SECONDS.match(body["orgLastSeen"])
    assert first is not None and _parse(body["orgFirstSeen"]) == first.replace(microsecond=0)


def test_legacy_answers_a_never_seen_ip_with_404(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(generation="legacy")
    answer = _get(emu, emu.org.sample_ips(1, seen=False)[0])
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "ResourceNotFound"


def test_both_sends_both_fields_and_seven_fractional_digits(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(generation="both")
    body = _get(emu, "10.209.67.177", 48).json()
    prevalence, first, _ = emu.org.stats("10.209.67.177", 48)
    assert body["orgPrevalence"] == str(prevalence)
    assert body["organizationPrevalence"] == prevalence
    assert SEVEN_DIGITS.match(body["orgFirstSeen"]) and SEVEN_DIGITS.match(body["orgLastSeen"])
    assert _parse(body["orgFirstSeen"]) == first
    unseen = _get(emu, emu.org.sample_ips(1, seen=False)[0])
    assert unseen.status_code == 200
    assert (unseen.json()["orgPrevalence"], unseen.json()["organizationPrevalence"]) == ("0", 0)


def test_generation_can_be_switched_while_running(emulator: Emulator) -> None:
    assert "organizationPrevalence" in _get(emulator, "10.209.67.177").json()
    emulator.set_generation("legacy")
    assert "organizationPrevalence" not in _get(emulator, "10.209.67.177").json()
    assert emulator.generation == "legacy"
