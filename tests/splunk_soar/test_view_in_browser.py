"""What the analyst sees, checked in a real browser (issue 14).

Real results (the SDK's runner against the HTTPS emulator: common and cached, never seen, invalid, rare,
a 403 on a second asset, a 429 on a third) go through the app's view handler to HTML; headless Chromium
(Debian's package, installed by scripts/chromium.sh) renders the page, and the text it *renders* must
hold every input IP and every failure's message and correlation id. A template that drops failed cards
fails the same check (proved below), and the test writes a screenshot like the README's.

No browser is a failure, not a skip: run scripts/chromium.sh (or set MDE_CHROMIUM).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soar_view
from soar_helpers import SoarRunner
from soar_view import Chromium, Scenario, missing_from_view, what_an_analyst_must_see

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    binary = soar_view.find_chromium()
    assert binary, "no chromium: run scripts/chromium.sh (installs Debian's chromium) or set MDE_CHROMIUM"
    return Chromium(binary)


@pytest.fixture(scope="module")
def scenario(emu: Any, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    work = tmp_path_factory.mktemp("view-scenario")
    return soar_view.run_scenario(emu, SoarRunner(state_dir=work / "state", work_dir=work), work)


@pytest.fixture(scope="module")
def page(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return soar_view.write_page(soar_view.render_view(scenario), tmp_path_factory.mktemp("view-page"))


def test_the_scenario_has_each_kind_of_answer_and_failure(scenario: Scenario) -> None:
    verdicts = [r.summary.get("verdict") for r in scenario.results if r.success]
    assert sorted(verdicts) == ["common", "not_seen", "rare"]
    categories = [r.summary["error"]["category"] for r in scenario.failed]
    assert categories == ["invalid_input", "permission", "rate_limited"]
    assert [r.params["ip"] for r in scenario.results] == scenario.ips
    assert scenario.results[0].summary["cached"] is True


@pytest.fixture(scope="module")
def rendered(chromium: Chromium, page: Path) -> soar_view.Rendered:
    return chromium.render(page)


def test_every_ip_and_every_failure_message_is_visible_in_chromium(rendered: soar_view.Rendered,
                                                                  scenario: Scenario) -> None:
    assert missing_from_view(rendered.visible_text, what_an_analyst_must_see(scenario)) == []
    assert len(what_an_analyst_must_see(scenario)) == len(scenario.ips) + 3 + 2  # 3 messages, 2 correlation ids


def test_the_cards_say_verdict_scope_category_wait_and_cache_in_words(rendered: soar_view.Rendered) -> None:
    text = rendered.visible_text
    assert missing_from_view(text, [
        "Common in the organization", "Not seen in the organization", "Rare in the organization",
        "private address", "public address", "Permission (HTTP 403 Forbidden)",
        "Rate limited, retry after 30 s", "Invalid input", "cached answer from",
        "6 IP addresses: 1 not seen, 1 rare, 1 common, 3 failed",
    ]) == []
    assert "LOOKUP FAILED" in text  # the pill, upper-cased by CSS: the browser really applied the styles
    assert "Collapse" not in text  # SOAR's widget menu is hidden as in SOAR: innerText is what is seen


FAILED_BRANCH = "{% if card.kind == 'failed' %}"
NEXT_BRANCH = "{% elif card.kind == 'not_seen' %}"


def skip_failed_cards(template: str) -> str:
    return template.replace("{% for card in cards %}", "{% for card in cards if card.kind != 'failed' %}")


def empty_the_failure_branch(template: str) -> str:
    start = template.index(FAILED_BRANCH) + len(FAILED_BRANCH)
    return template[:start] + template[template.index(NEXT_BRANCH):]


def template_variant(directory: Path, name: str, change: Callable[[str], str]) -> Path:
    original = (soar_view.view_module().TEMPLATES_DIR / "ip_statistics.html").read_text(encoding="utf-8")
    variant = change(original)
    assert variant != original, f"{change.__name__} no longer changes the template: update this test"
    (directory / name).write_text(variant, encoding="utf-8")
    return directory / name


def test_a_template_without_failed_cards_fails_the_check(chromium: Chromium, scenario: Scenario,
                                                         tmp_path: Path) -> None:
    """The check is not vacuous: drop the failed cards from the template and it names what is missing."""
    variant = template_variant(tmp_path, "no_failed_cards.html", skip_failed_cards)
    html = soar_view.render_view(scenario, template=variant.name, templates_dir=tmp_path)
    text = chromium.render(soar_view.write_page(html, tmp_path)).visible_text
    missing = missing_from_view(text, what_an_analyst_must_see(scenario))
    failed_ips = [r.params["ip"] for r in scenario.failed]
    assert set(failed_ips) <= set(missing)
    assert {r.message for r in scenario.failed} <= set(missing)
    assert not set(missing) & (set(scenario.ips) - set(failed_ips))


def test_a_template_whose_failed_cards_lose_their_advice_fails_the_check(chromium: Chromium, scenario: Scenario,
                                                                        tmp_path: Path) -> None:
    """A card with the IP but without the message and correlation id is not enough either."""
    variant = template_variant(tmp_path, "no_failure_branch.html", empty_the_failure_branch)
    html = soar_view.render_view(scenario, template=variant.name, templates_dir=tmp_path)
    text = chromium.render(soar_view.write_page(html, tmp_path)).visible_text
    missing = missing_from_view(text, what_an_analyst_must_see(scenario))
    correlations = {r.summary["error"]["correlation_id"] for r in scenario.failed} - {None}
    assert set(missing) == {r.message for r in scenario.failed} | correlations


def test_a_failed_card_hidden_by_css_is_not_seen_either(chromium: Chromium, scenario: Scenario,
                                                        tmp_path: Path) -> None:
    """In the DOM but not on screen (display: none) counts as missing: the check reads rendered text."""
    html = soar_view.render_view(scenario).replace("<style>", "<style>.mde-card.failed { display: none; }", 1)
    text = chromium.render(soar_view.write_page(html, tmp_path)).visible_text
    failed_ips = [r.params["ip"] for r in scenario.failed]
    assert set(failed_ips) <= set(missing_from_view(text, scenario.ips))


def test_the_check_itself_finds_present_and_absent_strings() -> None:
    text = "10.1.1.1\nRare in the\n  organization\n"
    assert missing_from_view(text, ["10.1.1.1", "Rare in the organization"]) == []
    assert missing_from_view(text, ["10.1.1.2", "10.1.1.1"]) == ["10.1.1.2"]


def test_a_screenshot_of_the_view_is_written(chromium: Chromium, page: Path, rendered: soar_view.Rendered,
                                            tmp_path: Path) -> None:
    height = rendered.page_height
    assert height > 400  # six cards
    png = chromium.screenshot(page, tmp_path / "splunk-soar-view.png", 852, height + 24)
    head = png.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    width, tall = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (width, tall) == (852, height + 24)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank


def test_the_readme_picture_shows_the_current_view() -> None:
    """docs/splunk-soar-view.png was made by scripts/soar-view-screenshot.py from today's template."""
    picture = soar_view.README_PICTURE
    assert picture.is_file(), f"{picture} is missing: run .venv-soar/bin/python scripts/soar-view-screenshot.py"
    assert picture.read_bytes()[:8] == PNG_SIGNATURE
    assert soar_view.png_text(picture).get(soar_view.FINGERPRINT_KEY) == soar_view.view_fingerprint(), (
        "the view changed since the README picture was made: run .venv-soar/bin/python scripts/soar-view-screenshot.py")


def test_a_png_stamp_reads_back_and_keeps_the_picture_valid(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    png.write_bytes(soar_view.README_PICTURE.read_bytes())
    soar_view.stamp_png(png, "k", "v1")
    assert soar_view.png_text(png)["k"] == "v1"
    assert png.read_bytes().endswith(b"IEND\xaeB`\x82")
