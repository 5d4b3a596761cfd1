"""Events in, the same events out, in order, each with the mde_* fields of its IP.

Each distinct IP of a search is answered once, whichever chunk it first appears in: answers are kept
in a per-search memo, so 10,000 events over 300 addresses cost at most 300 lookups (and none when the
shared result cache is fresh). A value that is not an IP address is answered invalid_input without a
request. No event is ever dropped: a failure is a status on the event, not a missing row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

from connector.errors import InvalidInputError
from connector.inputs import canonical_ip
from connector.results import ActionResult

FIELDS = ("prevalence", "first_seen", "last_seen", "seen_in_org", "verdict", "ip_scope", "new_in_window",
          "status", "error", "retry_after_s")
"""Every enriched event gets every field (empty when it does not apply), so columns are stable."""

Lookup = Callable[[str], ActionResult]
Row = dict[str, str]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def row_of(result: ActionResult) -> Row:
    """The mde_* values (unprefixed) of one core result."""
    row = dict.fromkeys(FIELDS, "")
    row["ip_scope"] = _text(result.summary.get("ip_scope"))
    if result.succeeded and result.data:
        data = result.data[0]
        row.update(prevalence=_text(data.get("organizationPrevalence")), first_seen=_text(data.get("orgFirstSeen")),
                   last_seen=_text(data.get("orgLastSeen")), seen_in_org=_text(data.get("seenInOrg")),
                   verdict=_text(data.get("verdict")), ip_scope=_text(data.get("ipScope")) or row["ip_scope"],
                   new_in_window=_text(data.get("newInWindow")),
                   status="cached" if result.cached else "success")
        return row
    error = result.error
    row["status"] = error.category.value if error is not None else "failed"
    row["error"] = error.message if error is not None else result.message
    row["retry_after_s"] = _text(error.retry_after_s if error is not None else None)
    return row


def invalid_row(message: str) -> Row:
    row = dict.fromkeys(FIELDS, "")
    row.update(status="invalid_input", error=message)
    return row


def failed_row(status: str, message: str) -> Row:
    row = dict.fromkeys(FIELDS, "")
    row.update(status=status, error=message)
    return row


class Enricher:
    """The enrichment of one search: its field, its output prefix, its memo of answers."""

    def __init__(self, field: str, lookup: Lookup, prefix: str = "mde_") -> None:
        self.field = field
        self.prefix = prefix
        self._lookup = lookup
        self.memo: dict[str, Row] = {}
        self.lookups = 0

    def key_of(self, value: Any) -> tuple[str | None, Row | None]:
        """The canonical IP of an event's field value, or the invalid_input row explaining why not."""
        if isinstance(value, list | tuple):
            if len(value) != 1:
                return None, invalid_row(
                    f"Field {self.field} holds {len(value)} values; mdeipstats takes one address per event "
                    f"(use mvexpand {self.field} first)." if value else f"Field {self.field} is empty.")
            value = value[0]
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, invalid_row(f"Field {self.field} is absent or empty in this event.")
        try:
            return canonical_ip(str(value)), None
        except InvalidInputError as exc:
            return None, invalid_row(f"Field {self.field}: {exc.message}")

    def answer(self, ip: str) -> Row:
        row = self.memo.get(ip)
        if row is None:
            self.lookups += 1
            row = self.memo[ip] = row_of(self._lookup(ip))
        return row

    def enrich(self, records: Iterable[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
        """One chunk of events: new addresses looked up in first-seen order, then every event tagged."""
        events = list(records)
        rows: list[Row] = []
        for event in events:
            ip, invalid = self.key_of(event.get(self.field))
            rows.append(invalid if invalid is not None else self.answer(str(ip)))
        for event, row in zip(events, rows, strict=True):
            self.tag(event, row)
        return events

    def tag(self, event: MutableMapping[str, Any], row: Mapping[str, str]) -> None:
        for name in FIELDS:
            event[self.prefix + name] = row[name]


def tag_all(events: Iterable[MutableMapping[str, Any]], row: Row, prefix: str) -> list[MutableMapping[str, Any]]:
    """Every event with the same row: a search whose account or settings could not be read."""
    out = list(events)
    for event in out:
        for name in FIELDS:
            event[prefix + name] = row[name]
    return out
