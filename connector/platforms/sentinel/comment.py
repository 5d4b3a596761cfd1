"""The incident comment: the analyst's view of one call's results, in the HTML Sentinel comments accept.

Every address has a row, failures included: verdict, scope, devices, first/last seen (with "new" when
it first appeared within novelty_hours of the window), cached answers marked. Rows come most telling
first (failed, not seen, rare, then common), so that when an incident has more addresses than a comment
holds (Sentinel: 30,000 characters per comment) the ones cut are common ones, and a closing line says
how many of each were left out. A failure's message (the grant command, say) is written once under the
table, however many addresses it failed, with a note number in their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from connector.results import ActionResult

COMMENT_LIMIT = 30_000
"""Characters Sentinel accepts in one incident comment (3,000 until 2022)."""
TAG_BY_VERDICT = {"not_seen": "mde-not-seen", "rare": "mde-rare"}
_ORDER = {"failed": 0, "not_seen": 1, "rare": 2, "common": 3}
_VERDICT_WORDS = {"failed": "FAILED", "not_seen": "NOT SEEN", "rare": "rare", "common": "common"}
_LEFT_OUT_RESERVE = 300
"""Room kept for the closing "N more addresses not shown" line (it is under 250 characters)."""
_HEADER = ("<tr><th>IP</th><th>Verdict</th><th>Scope</th><th>Devices</th><th>First seen</th><th>Last seen</th>"
           "<th>Notes</th></tr>")


def verdict_of(result: ActionResult) -> str:
    if result.status == "failed" or not result.data:
        return "failed"
    return str(result.data[0].get("verdict") or ("common" if result.data[0].get("seenInOrg") else "not_seen"))


def incident_tags(results: Sequence[ActionResult]) -> list[str]:
    """The tags the incident gets: mde-not-seen when an address was seen on no device, mde-rare when one
    was rare (in that order, each once)."""
    verdicts = {verdict_of(r) for r in results}
    return [tag for verdict, tag in TAG_BY_VERDICT.items() if verdict in verdicts]


def render_comment(results: Sequence[ActionResult], lookback_hours: int | None, notes: Sequence[str] = (),
                   limit: int = COMMENT_LIMIT) -> str:
    """The comment's HTML, at most ``limit`` characters; ``notes`` (plain text) close it."""
    if not results:
        return _fit("<p><b>Defender for Endpoint IP statistics</b>: this incident has no IP address to look up "
                    "(its entities hold none).</p>" + _notes(notes), limit)
    ordered = sorted(results, key=lambda r: _ORDER.get(verdict_of(r), 3))
    footnotes: dict[str, int] = {}
    rows = [_row(result, footnotes) for result in ordered]
    window = f"the last {lookback_hours} hours" if lookback_hours else "the look-back window"
    head = (f"<p><b>Defender for Endpoint: organization prevalence</b> of {len(results)} address"
            f"{'es' if len(results) != 1 else ''} in {window} ({_counts(results)}).</p><table>{_HEADER}")
    room = limit - len(head) - len("</table><ol></ol>") - len(_notes(notes))
    shown, used = 0, 0
    seen_messages: set[str] = set()
    for row, result in zip(rows, ordered, strict=True):
        note = ""
        if verdict_of(result) == "failed" and result.message not in seen_messages:
            note = _footnote(footnotes[result.message], result.message)
        reserve = _LEFT_OUT_RESERVE if shown + 1 < len(rows) else 0
        if shown and used + len(row) + len(note) + reserve > room:
            break
        used += len(row) + len(note)
        if note:
            seen_messages.add(result.message)
        shown += 1
    left = ordered[shown:]
    items = "".join(_footnote(n, m) for m, n in footnotes.items() if m in seen_messages)
    html = (head + "".join(rows[:shown]) + "</table>" + (_left_out(left) if left else "")
            + (f"<ol>{items}</ol>" if items else "") + _notes(notes))
    return _fit(html, limit)


def _row(result: ActionResult, footnotes: dict[str, int]) -> str:
    verdict = verdict_of(result)
    ip = escape(str(result.parameters.get("ip", "")))
    scope = escape(str(result.summary.get("ip_scope") or "-"))
    if verdict == "failed":
        assert result.error is not None
        number = footnotes.setdefault(result.message, len(footnotes) + 1)
        note = f"{escape(result.error.category.value)} [{number}]"
        if result.error.retry_after_s:
            note += f", retry after {result.error.retry_after_s:.0f} s"
        return _cells(ip, "<b>FAILED</b>", scope, "-", "-", "-", note)
    data: dict[str, Any] = result.data[0]
    scope = escape(str(data.get("ipScope") or "-")) + (
        f" ({escape(str(data['ipScopeDetail']))})" if data.get("ipScopeDetail") else "")
    notes = []
    if data.get("newInWindow"):
        notes.append(f"<b>new</b>: first seen {float(data.get('firstSeenAgeHours') or 0):.0f} h ago")
    if result.cached:
        notes.append(f"cached, {result.cache_age_s or 0:.0f} s old")
    words = _VERDICT_WORDS.get(verdict, escape(verdict))
    shown = f"<b>{words}</b>" if verdict in ("not_seen", "rare") else words
    return _cells(ip, shown, scope, str(int(data.get("organizationPrevalence") or 0)),
                  _when(data.get("orgFirstSeen")), _when(data.get("orgLastSeen")), "; ".join(notes))


def _cells(*cells: str) -> str:
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _when(timestamp: Any) -> str:
    text = str(timestamp or "")
    return escape(f"{text[:10]} {text[11:16]}Z") if len(text) >= 16 else "-"


def _counts(results: Sequence[ActionResult]) -> str:
    tally: dict[str, int] = {}
    for result in results:
        verdict = verdict_of(result)
        tally[verdict] = tally.get(verdict, 0) + 1
    return ", ".join(f"{tally[v]} {_VERDICT_WORDS[v].lower()}" for v in _ORDER if v in tally)


def _left_out(left: Sequence[ActionResult]) -> str:
    return (f"<p><b>{len(left)} more address{'es' if len(left) != 1 else ''} not shown</b> "
            f"({_counts(left)}): a comment holds {COMMENT_LIMIT:,} characters; every result is in the "
            "playbook run's output.</p>")


def _footnote(number: int, message: str) -> str:
    return f"<li value=\"{number}\">{escape(message)}</li>"


def _notes(notes: Sequence[str]) -> str:
    return "".join(f"<p><i>{escape(note)}</i></p>" for note in notes)


def _fit(html: str, limit: int) -> str:
    """A last resort for absurd inputs (a single failure message longer than the limit): cut, and say so."""
    if len(html) <= limit:
        return html
    marker = "<p>(cut at the comment size limit)</p>"
    return html[: max(0, limit - len(marker))] + marker
