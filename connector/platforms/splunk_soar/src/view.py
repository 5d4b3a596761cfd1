"""The custom view: one card per action result (so per input IP), in input order, failures included.

Why not the SDK's ``@app.view_handler``: it parses each result's *data rows* into output models and
hands the handler only those. A failed lookup has no data row (``data: []``), so through it a failed
IP vanishes from the view, and with it the advice that says what to fix. SOAR itself calls a view
as ``view(action, all_app_runs, context)`` with whole action results (status, message, parameter,
data, summary); this module reads those and renders the template with the SDK's own Jinja renderer
and widget templates, as the SDK's wrapper does (``context["prerender"] = True``, the HTML returned).

Every judgement comes from the core's result: ``verdict``, ``ipScope``, ``newInWindow`` in the data
row, ``error``/``ip_scope``/``cached``/``cache_age_s`` in the summary. The view keeps no threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soar_sdk.views.template_renderer import get_template_renderer

TEMPLATE = "ip_statistics.html"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

VERDICT_WORDS = {
    "not_seen": "Not seen in the organization",
    "rare": "Rare in the organization",
    "common": "Common in the organization",
}
SCOPE_WORDS = {
    "private": "private address",
    "public": "public address",
    "loopback": "loopback address",
    "link_local": "link-local address",
    "multicast": "multicast address",
    "shared": "shared address space (carrier-grade NAT)",
    "reserved": "reserved address",
}
CATEGORY_WORDS = {
    "invalid_input": "invalid input",
    "configuration": "configuration",
    "authentication": "authentication",
    "permission": "permission",
    "rate_limited": "rate limited",
    "unavailable": "service unavailable",
    "network": "network",
    "unexpected_response": "unexpected response",
}


@dataclass
class Card:
    """What one IP's card shows; ``kind`` is a verdict, ``failed``, or ``seen`` (a result without one)."""

    ip: str
    kind: str
    headline: str  # the verdict with the device count, or the error category in words
    scope: str | None = None
    answered_ip: str | None = None  # Defender's canonical form, when it differs from the input
    devices: int | None = None
    window_hours: int | None = None
    first_seen: str | None = None
    first_ago: str | None = None
    last_seen: str | None = None
    last_ago: str | None = None
    new_in_window: bool = False
    cached: str | None = None  # "answer from 4 minutes ago"
    message: str = ""
    http: str | None = None  # "HTTP 403 Forbidden"
    correlation_id: str | None = None


@dataclass
class ViewModel:
    """The template's context: the cards and a one-line count of them."""

    cards: list[Card] = field(default_factory=list)

    @property
    def tally(self) -> str:
        counts: dict[str, int] = {}
        for card in self.cards:
            counts[card.kind] = counts.get(card.kind, 0) + 1
        order = (("not_seen", "not seen"), ("rare", "rare"), ("common", "common"), ("seen", "seen"),
                 ("failed", "failed"))
        parts = [f"{counts[kind]} {words}" for kind, words in order if counts.get(kind)]
        total = len(self.cards)
        return f"{total} IP address{'es' if total != 1 else ''}: " + ", ".join(parts) if parts else "No IP address"

    def context(self) -> dict[str, Any]:
        return {"cards": self.cards, "tally": self.tally}


def ago(seconds: float) -> str:
    """An age as a person says it: 'just now', '4 minutes ago', '3 hours ago', 'yesterday', '12 days ago'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "just now" if seconds < 10 else f"{int(seconds)} seconds ago"
    minutes = seconds / 60
    if minutes < 60:
        whole = int(minutes)
        return f"{whole} minute{'s' if whole != 1 else ''} ago"
    hours = minutes / 60
    if hours < 24:
        whole = int(hours)
        return f"{whole} hour{'s' if whole != 1 else ''} ago"
    days = int(hours // 24)
    return "yesterday" if days == 1 else f"{days} days ago"


def _moment(timestamp: Any) -> datetime | None:
    if not isinstance(timestamp, str) or not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(timestamp: Any, now: datetime) -> tuple[str | None, str | None]:
    """('2026-11-02 13:36 UTC', '28 days ago') for an RFC 3339 timestamp; the raw text if unreadable."""
    moment = _moment(timestamp)
    if moment is None:
        return (str(timestamp) if timestamp else None), None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"), ago((now - moment).total_seconds())


def scope_words(scope: Any, detail: Any = None) -> str | None:
    """'private address', 'reserved address (documentation)'; None when the result has no scope."""
    if not scope:
        return None
    words = SCOPE_WORDS.get(str(scope), f"{scope} address")
    return f"{words} ({str(detail).replace('_', ' ')})" if detail else words


def error_words(error: Mapping[str, Any] | None) -> str:
    """The error category in words, with the wait when Defender said how long: 'rate limited, retry after 30 s'."""
    if not error:
        return "unknown error"
    category = str(error.get("category") or "unknown")
    words = CATEGORY_WORDS.get(category, category.replace("_", " "))
    retry_after = error.get("retry_after_s")
    if isinstance(retry_after, int | float) and retry_after > 0:
        words += f", retry after {retry_after:.0f} s"
    return words


def _http(error: Mapping[str, Any]) -> str | None:
    """'HTTP 403 Forbidden' when the service answered; None when the lookup never reached it."""
    status, code = error.get("http_status"), error.get("code")
    return f"HTTP {status} {code or ''}".rstrip() if status else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def card(result: Any, now: datetime) -> Card:
    """One SOAR action result (the platform's or the SDK's ActionResult) as one card."""
    param = result.get_param() or {}
    summary = result.get_summary() or {}
    data = result.get_data() or []
    message = str(result.get_message() or "")
    row = data[0] if data and isinstance(data[0], Mapping) else {}
    ip = str(param.get("ip") or row.get("ipAddress") or "(no IP address)")
    cached = None
    if summary.get("cached"):
        cache_age = summary.get("cache_age_s")
        cached = "cached answer"
        if isinstance(cache_age, int | float):
            cached += f" from {ago(float(cache_age))}"

    if not result.get_status():
        error = summary.get("error") if isinstance(summary.get("error"), Mapping) else {}
        return Card(
            ip=ip, kind="failed", headline=error_words(error).capitalize(),
            scope=scope_words(summary.get("ip_scope")), message=message or "No message.",
            http=_http(error), correlation_id=error.get("correlation_id"), cached=cached,
        )

    if not row:
        return Card(ip=ip, kind="seen", headline="Answered without statistics", message=message, cached=cached)
    verdict = row.get("verdict") or summary.get("verdict")
    devices = _int(row.get("organizationPrevalence"))
    if verdict not in VERDICT_WORDS:  # a result from before the core judged: state the count only
        verdict = "not_seen" if not devices else "seen"
    headline = VERDICT_WORDS.get(verdict, "Seen in the organization")
    if verdict != "not_seen":
        headline += f": {devices} device{'s' if devices != 1 else ''}"
    first_seen, first_ago = _when(row.get("orgFirstSeen"), now)
    last_seen, last_ago = _when(row.get("orgLastSeen"), now)
    answered = str(row.get("ipAddress") or "") or None
    return Card(
        ip=ip, kind=verdict, headline=headline,
        scope=scope_words(row.get("ipScope") or summary.get("ip_scope"), row.get("ipScopeDetail")),
        answered_ip=answered if answered and answered != ip else None,
        devices=devices, window_hours=_int(row.get("lookBackHours") or param.get("lookback_hours")),
        first_seen=first_seen, first_ago=first_ago, last_seen=last_seen, last_ago=last_ago,
        new_in_window=row.get("newInWindow") is True, cached=cached, message=message,
    )


def view_model(all_app_runs: Iterable[Sequence[Any]], now: datetime | None = None) -> ViewModel:
    """Every action result of every app run (one per asset), in the order SOAR gives them."""
    now = now or datetime.now(UTC)
    return ViewModel([card(result, now) for _summary, results in all_app_runs for result in results])


def render(all_app_runs: Iterable[Sequence[Any]], context: dict[str, Any], *, template: str = TEMPLATE,
           templates_dir: Path = TEMPLATES_DIR, now: datetime | None = None) -> str:
    """The view's HTML, rendered by the SDK's renderer (its widget templates included).

    ``template``/``templates_dir`` exist so a test can render a variant and see that its check fails.
    """
    renderer = get_template_renderer("jinja", str(templates_dir))
    try:
        model = view_model(all_app_runs, now)
        html = renderer.render_template(template, {**context, **model.context()})
    except Exception as exc:  # the analyst sees what broke instead of a blank widget
        html = renderer.render_error_template(
            "View Function Error", f"Failed to render {template}: {exc!s}", "render_ip_statistics", template)
    context["prerender"] = True  # SOAR 7+: use the returned HTML as is
    return html
