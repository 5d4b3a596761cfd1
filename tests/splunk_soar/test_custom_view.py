"""The custom view, rendered by the SDK's own view machinery from action results."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from soar_helpers import APP_DIR
from soar_sdk.action_results import ActionResult


def app_module() -> Any:
    sys.path.insert(0, str(APP_DIR.parent))
    try:
        return importlib.import_module("splunk_soar.src.app")
    finally:
        sys.path.remove(str(APP_DIR.parent))


def result(ip: str, devices: int, first: str | None, last: str | None) -> ActionResult:
    out = ActionResult(status=True, message="m", param={"ip": ip, "lookback_hours": 720})
    out.add_data({"ipAddress": ip, "organizationPrevalence": devices, "orgPrevalence": str(devices),
                  "orgFirstSeen": first, "orgLastSeen": last, "seenInOrg": devices > 0, "lookBackHours": 720})
    return out


def render(results: list[ActionResult]) -> str:
    context = {"QS": {}, "container": 1, "app": 1, "no_connection": False, "google_maps_key": False}
    runs = [({"total_objects": len(results), "total_objects_successful": len(results)}, results)]
    html: str = app_module().render_ip_statistics("get_ip_statistics", runs, context)
    return html


def test_the_view_says_not_seen_rare_and_common_with_dates_and_ages() -> None:
    now = datetime.now(UTC)
    ten_days = (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    yesterday = (now - timedelta(days=1, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    html = render([result("203.0.113.77", 0, None, None),
                   result("10.1.2.3", 3, ten_days, yesterday),
                   result("10.209.67.177", 3164, ten_days, yesterday)])
    assert "Error" not in html, html[:2000]
    assert "203.0.113.77" in html and "Not seen in the organization" in html
    assert "Rare in the organization: 3 devices" in html
    assert "Common in the organization: 3164 devices" in html
    assert ten_days[:10] in html and "10 days ago" in html and "yesterday" in html


def test_the_view_of_a_failed_lookup_points_to_its_message() -> None:
    failed = ActionResult(status=False, message="denied", param={"ip": "1.2.3.4", "lookback_hours": 720})
    html = render([failed])
    assert "No IP statistics in this result" in html
