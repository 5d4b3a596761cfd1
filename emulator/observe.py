"""What crossed the wire: counters and a request log, so that tests assert on real traffic.

Control-endpoint requests (`/_emulator/...`) are neither counted nor logged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


def _app_counters() -> dict[str, int]:
    return {"token_requests": 0, "api_calls": 0, "http_429": 0}


def _totals() -> dict[str, int]:
    """Per-app counters plus device authorization and managed identity token requests (in total only)."""
    return {**_app_counters(), "device_code_requests": 0, "identity_token_requests": 0}


class Observations:
    def __init__(self, log_limit: int) -> None:
        self._lock = threading.Lock()
        self._log: deque[dict[str, Any]] = deque(maxlen=log_limit)
        self._totals = _totals()
        self._per_app: dict[str, dict[str, int]] = {}

    def record(self, *, method: str, path: str, route: str, status: int | None, client_id: str | None,
               fault: str | None, tenant_id: str | None = None, detail: str | None = None,
               duration_s: float = 0.0) -> None:
        entry = {"time": time.time(), "method": method, "path": path, "route": route, "status": status,
                 "client_id": client_id, "fault": fault, "tenant_id": tenant_id, "detail": detail,
                 "duration_ms": round(duration_s * 1000, 3)}
        with self._lock:
            self._log.append(entry)
            increments = []
            if route == "token":
                increments.append("token_requests")
            if route == "api":
                increments.append("api_calls")
            if route == "devicecode":
                increments.append("device_code_requests")
            if route == "identity":
                increments.append("identity_token_requests")
            if status == 429:
                increments.append("http_429")
            app = self._per_app.setdefault(client_id, _app_counters()) if client_id else None
            for name in increments:
                self._totals[name] += 1
                if app is not None and name in app:
                    app[name] += 1

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {**self._totals, "per_app": {k: dict(v) for k, v in self._per_app.items()}}

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log]

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._totals = _totals()
            self._per_app.clear()
