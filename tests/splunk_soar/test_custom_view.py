"""The custom view, rendered by the app's handler (the SDK's renderer and widget templates) from whole
action results: one card per IP in input order, failures included, judged by the core's fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from soar_sdk.action_results import ActionResult
from soar_view import VIEW_CONTEXT, app_module, view_module

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def stamp(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def answered(ip: str, verdict: str, devices: int, scope: str = "private", *, first_h: float | None = 240,
             last_h: float | None = 20, new: bool | None = False, detail: str | None = None,
             cache_age_s: float | None = None) -> ActionResult:
    out = ActionResult(status=True, message=f"{ip} is {verdict}", param={"ip": ip, "lookback_hours": 720})
    seen = devices > 0
    out.add_data({"ipAddress": ip, "organizationPrevalence": devices, "orgPrevalence": str(devices),
                  "orgFirstSeen": stamp(first_h) if seen and first_h is not None else None,
                  "orgLastSeen": stamp(last_h) if seen and last_h is not None else None,
                  "seenInOrg": seen, "lookBackHours": 720, "verdict": verdict, "ipScope": scope,
                  "ipScopeDetail": detail, "firstSeenAgeHours": first_h if seen else None,
                  "lastSeenAgeHours": last_h if seen else None, "newInWindow": new})
    out.set_summary({"organization_prevalence": devices, "seen_in_org": seen, "verdict": verdict,
                     "ip_scope": scope, "error": None, "cached": cache_age_s is not None,
                     "cache_age_s": cache_age_s})
    return out


def failed(ip: str, category: str, message: str, *, status: int | None = None, code: str | None = None,
           correlation: str | None = None, retry_after: float | None = None,
           scope: str | None = "public") -> ActionResult:
    out = ActionResult(status=False, message=message, param={"ip": ip, "lookback_hours": 720})
    out.set_summary({"organization_prevalence": None, "seen_in_org": None, "verdict": None, "ip_scope": scope,
                     "error": {"category": category, "http_status": status, "code": code, "message": message,
                               "correlation_id": correlation, "retry_after_s": retry_after},
                     "cached": False, "cache_age_s": None})
    return out


def runs(*groups: list[ActionResult]) -> list[tuple[dict[str, int], list[ActionResult]]]:
    return [({"total_objects": len(g), "total_objects_successful": sum(r.get_status() for r in g)}, g)
            for g in groups]


def render(*groups: list[ActionResult]) -> str:
    html: str = app_module().render_ip_statistics("get_ip_statistics", runs(*groups), dict(VIEW_CONTEXT))
    return html


def cards_of(html: str) -> list[tuple[str, str]]:
    """(kind, ip) of every card, in page order."""
    return re.findall(r'<div class="mde-card (\w+)" data-ip="([^"]*)">', html)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_one_card_per_result_in_input_order_failures_included() -> None:
    html = render([answered("10.209.67.177", "common", 3164),
                   failed("10.9.9.9", "permission", "Grant Ip.Read.All and admin consent.", status=403,
                          code="Forbidden", correlation="c0ffee00-0000-4000-8000-000000000001"),
                   answered("203.0.113.77", "not_seen", 0, "reserved", detail="documentation")],
                  [failed("999.1.1.1", "invalid_input", "'999.1.1.1' is not a valid IPv4 or IPv6 address.",
                          scope=None)])
    assert "Error" not in html, html[:2000]
    assert cards_of(html) == [("common", "10.209.67.177"), ("failed", "10.9.9.9"), ("not_seen", "203.0.113.77"),
                              ("failed", "999.1.1.1")]
    assert "4 IP addresses: 1 not seen, 1 common, 2 failed" in text_of(html)


def test_a_failed_card_names_the_category_the_advice_and_the_correlation_id() -> None:
    text = text_of(render([failed("10.9.9.9", "permission", "Grant Ip.Read.All and admin consent.", status=403,
                                  code="Forbidden", correlation="c0ffee00-0000-4000-8000-000000000001",
                                  scope="private")]))
    assert "lookup failed 10.9.9.9" in text
    assert "Permission (HTTP 403 Forbidden)" in text
    assert "Grant Ip.Read.All and admin consent." in text
    assert "Correlation id for Microsoft support: c0ffee00-0000-4000-8000-000000000001" in text
    assert "private address" in text


def test_a_throttled_lookup_says_how_long_to_wait() -> None:
    text = text_of(render([failed("8.8.8.8", "rate_limited", "Defender is throttling this application.",
                                  status=429, code="TooManyRequests", retry_after=30.0)]))
    assert "Rate limited, retry after 30 s (HTTP 429 TooManyRequests)" in text


def test_a_lookup_that_never_reached_defender_shows_no_http_status() -> None:
    text = text_of(render([failed("999.1.1.1", "invalid_input", "not an IP", code="InvalidIpAddress", scope=None)]))
    assert "Invalid input" in text and "HTTP" not in text and "address)" not in text


def test_cards_show_the_core_verdict_not_a_threshold_of_the_view() -> None:
    """A SOC that set rare_device_threshold to 10 sees 8 devices as rare: the view repeats the core."""
    html = render([answered("10.1.1.1", "rare", 8), answered("10.1.1.2", "common", 2)])
    assert cards_of(html) == [("rare", "10.1.1.1"), ("common", "10.1.1.2")]
    text = text_of(html)
    assert "Rare in the organization: 8 devices" in text and "Common in the organization: 2 devices" in text
    assert not hasattr(app_module(), "RARE_DEVICE_COUNT")


def test_scope_novelty_dates_and_ages_are_in_words() -> None:
    view = view_module()
    model = view.view_model(runs([answered("198.51.100.7", "rare", 2, "reserved", first_h=5, last_h=0.5,
                                           new=True, detail="documentation")]), now=NOW)
    [card] = model.cards
    assert card.scope == "reserved address (documentation)"
    assert card.new_in_window is True
    assert (card.first_seen, card.first_ago) == ("2026-11-30 07:00 UTC", "5 hours ago")
    assert card.last_ago == "30 minutes ago"
    html = view.render(runs([answered("198.51.100.7", "rare", 2, "reserved", first_h=5, last_h=0.5, new=True,
                                      detail="documentation")]), dict(VIEW_CONTEXT), now=NOW)
    assert "new: first seen 5 hours ago" in text_of(html)


def test_a_cached_answer_says_how_old_it_is() -> None:
    text = text_of(render([answered("10.209.67.177", "common", 3164, cache_age_s=245.0)]))
    assert "cached answer from 4 minutes ago" in text


@pytest.mark.parametrize(("seconds", "words"), [
    (3, "just now"), (42, "42 seconds ago"), (60, "1 minute ago"), (245, "4 minutes ago"), (3600, "1 hour ago"),
    (5 * 3600, "5 hours ago"), (25 * 3600, "yesterday"), (29 * 86400, "29 days ago"), (-5, "just now"),
])
def test_ages_read_as_a_person_says_them(seconds: float, words: str) -> None:
    assert view_module().ago(seconds) == words


def test_an_ip_typed_as_html_is_shown_as_text_not_markup() -> None:
    html = render([failed("<img src=x onerror=alert(1)>", "invalid_input", "<b>not an IP</b>", scope=None)])
    assert "<img src=x" not in html and "<b>not an IP</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_result_from_an_app_version_without_verdict_still_gets_a_card() -> None:
    old = ActionResult(status=True, message="m", param={"ip": "10.1.2.3", "lookback_hours": 720})
    old.add_data({"ipAddress": "10.1.2.3", "organizationPrevalence": 3, "seenInOrg": True, "lookBackHours": 720,
                  "orgFirstSeen": stamp(30), "orgLastSeen": stamp(2)})
    html = render([old])
    assert cards_of(html) == [("seen", "10.1.2.3")]
    assert "Seen in the organization: 3 devices" in text_of(html)


def test_the_handler_prerenders_for_soar_and_a_broken_template_shows_an_error_not_a_blank(
        tmp_path: Any) -> None:
    context = dict(VIEW_CONTEXT)
    app_module().render_ip_statistics("get_ip_statistics", runs([answered("10.1.1.1", "rare", 2)]), context)
    assert context["prerender"] is True
    (tmp_path / "broken.html").write_text("{% for card in cards %}{{ card.missing.attribute }}{% endfor %}")
    html = view_module().render(runs([answered("10.1.1.1", "rare", 2)]), dict(VIEW_CONTEXT),
                                template="broken.html", templates_dir=tmp_path)
    assert "Failed to render broken.html" in html
