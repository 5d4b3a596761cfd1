"""The synthetic organisation: statistics are computed from seeded events, not stored."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from emulator import Emulator
from emulator.addresses import canonical_ip
from emulator.orgdata import HOUR_TICKS, Organisation, OrgData, to_ticks
from emulator.pytest_plugin import PINNED_NOW
from emulator.testing import https_session


def _brute_force(data: OrgData, org: Organisation, ip: str, hours: int, now_ticks: int) -> tuple[int, int | None]:
    history = data.history(data.rank[ip])
    end = now_ticks - org.anchor_ticks
    start = end - hours * HOUR_TICKS
    window = [(t, d) for t, d in zip(history.times, history.devices, strict=True) if start <= t <= end]
    return len({d for _, d in window}), (min(t for t, _ in window) + org.anchor_ticks if window else None)


def test_api_figures_equal_the_organisations_computation(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(rate_limits=())
    session = https_session(emu.ca_path)
    session.headers["Authorization"] = f"Bearer {emu.issue_token('reader')}"
    for ip in [*emu.org.sample_ips(8), "10.209.67.177"]:
        for hours in (1, 24, 720):
            body = session.get(f"{emu.api_url}/api/ips/{ip}/stats?lookBackHours={hours}").json()
            assert body["organizationPrevalence"] == emu.org.stats(ip, hours)[0]


def test_prevalence_grows_with_the_look_back(emulator_session: Emulator) -> None:
    figures = [emulator_session.org.stats("10.209.67.177", hours)[0] for hours in (1, 24, 168, 720)]
    assert figures == sorted(figures)
    assert len(set(figures)) == 4


def test_documentation_example_ip_is_the_most_prevalent(emulator_session: Emulator) -> None:
    org = emulator_session.org
    example = org.stats("10.209.67.177", 720)[0]
    assert example > org.device_count / 2
    assert all(org.stats(ip, 720)[0] <= example for ip in org.sample_ips(200))
    assert org.most_popular(1) == ["10.209.67.177"]


def test_bisected_statistics_match_a_brute_force_count(emulator_session: Emulator) -> None:
    org = emulator_session.org
    now_ticks = to_ticks(org.now())
    rng = random.Random(1)
    for ip in [*org.most_popular(3), *org.sample_ips(20)]:
        hours = rng.randrange(1, 721)
        detail = org.stats_detail(ip, hours)
        assert (detail.prevalence, detail.first_seen_ticks) == _brute_force(org.data, org, ip, hours, now_ticks)


def test_a_past_now_counts_only_events_up_to_it(emulator_session: Emulator) -> None:
    org = emulator_session.org
    past = org.now() - timedelta(days=10, minutes=7)
    for ip in ("10.209.67.177", *org.sample_ips(5)):
        detail = org.stats_detail(ip, 48, now=past)
        assert (detail.prevalence, detail.first_seen_ticks) == _brute_force(org.data, org, ip, 48, to_ticks(past))
        assert detail.last_seen_ticks is None or detail.last_seen_ticks <= to_ticks(past)


def test_same_seed_same_organisation_other_seed_other_organisation() -> None:
    first, again, other = OrgData(11), OrgData(11), OrgData(12)
    assert first.ips[:500] == again.ips[:500]
    assert first.history(3) == again.history(3)
    assert first.ips[1:500] != other.ips[1:500]
    assert first.ips[0] == other.ips[0] == "10.209.67.177"


def test_same_seed_gives_the_same_ids_and_figures_across_emulators(make_emulator) -> None:  # type: ignore[no-untyped-def]
    one, two, three = make_emulator(seed=5), make_emulator(seed=5), make_emulator(seed=6)
    assert one.tenant_id == two.tenant_id != three.tenant_id
    assert one.apps["reader"].client_id == two.apps["reader"].client_id
    assert one.apps["reader"].client_secret != two.apps["reader"].client_secret  # credentials are per run
    ip = one.org.sample_ips(1)[0]
    assert one.org.stats(ip, 100) == two.org.stats(ip, 100)


def test_sample_ips_seen_and_never_seen(emulator_session: Emulator) -> None:
    org = emulator_session.org
    seen, unseen = org.sample_ips(300), org.sample_ips(300, seen=False)
    assert all(org.stats(ip, 720)[0] > 0 for ip in seen)
    assert all(org.stats(ip, 720) == (0, None, None) for ip in unseen)
    assert all(canonical_ip(ip) == ip for ip in seen + unseen)
    for sample in (seen, unseen):
        assert any(":" in ip for ip in sample), "IPv6 present"
        assert any(ip.startswith("10.") for ip in sample), "internal IPv4 present"
        assert any(not ip.startswith(("10.", "172.", "192.168.", "fd")) for ip in sample), "external present"
    assert org.sample_ips(5) == org.sample_ips(5)


def test_the_calendar_is_pinned_and_moves_only_when_advanced(emulator: Emulator) -> None:
    assert emulator.now() == PINNED_NOW
    before = emulator.org.stats("10.209.67.177", 1)
    time.sleep(0.05)
    assert emulator.now() == PINNED_NOW
    emulator.advance_clock(1800)
    assert emulator.now() == PINNED_NOW + timedelta(minutes=30)
    assert emulator.org.stats("10.209.67.177", 1)[0] < before[0]


def test_startup_and_queries_are_fast(make_emulator) -> None:  # type: ignore[no-untyped-def]
    emu = make_emulator(seed=7)
    assert emu.startup_s < 1.0
    ips = emu.org.sample_ips(200)
    emu.org.stats("10.209.67.177", 720)
    started = time.perf_counter()
    for ip in ips * 5:
        emu.org.stats(ip, 24)
    assert time.perf_counter() - started < 1.0


def test_lookback_outside_1_to_720_is_refused_by_the_computation_too(emulator_session: Emulator) -> None:
    for hours in (0, 721):
        with pytest.raises(ValueError):
            emulator_session.org.stats("10.209.67.177", hours)
