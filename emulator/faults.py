"""Scripted faults: what the next request(s) on a route should suffer instead of (or on top of)
the normal answer.

- `status` (+ `body`, `headers`): answer with this instead of the normal answer.
- `delay_s`: wait this long (real seconds) first; on its own, the normal answer follows.
- `reset`: close the connection with a TCP RST (SO_LINGER 0) and send nothing.
- `malformed`: the answer's JSON cut in half, with a Content-Length that matches (valid HTTP,
  invalid JSON).
- `truncated`: the answer's headers announce the full Content-Length, half the body is sent, then
  the connection closes.
- `content_type`: replace the Content-Type (e.g. `text/html` with a portal page as `body`).

Faults queue per route (`api`, `token`, `devicecode`, `discovery`, `identity` or `any`) and are consumed in order.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROUTES = ("api", "token", "devicecode", "discovery", "identity", "any")


@dataclass(frozen=True)
class Fault:
    route: str = "api"
    status: int | None = None
    body: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    reset: bool = False
    malformed: bool = False
    truncated: bool = False
    content_type: str | None = None

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be 100..599")
        if self.delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        if isinstance(self.body, str):
            object.__setattr__(self, "body", self.body.encode("utf-8"))

    @property
    def body_bytes(self) -> bytes | None:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body

    def describe(self) -> str:
        parts = []
        if self.delay_s:
            parts.append(f"delay={self.delay_s:g}s")
        if self.reset:
            parts.append("reset")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.malformed:
            parts.append("malformed")
        if self.truncated:
            parts.append("truncated")
        if self.content_type:
            parts.append(f"content_type={self.content_type}")
        if self.headers:
            parts.append("headers=" + ",".join(sorted(self.headers)))
        return " ".join(parts) or "noop"

    def to_json(self) -> dict[str, Any]:
        return {"route": self.route, "status": self.status,
                "body": None if self.body is None else (self.body_bytes or b"").decode("utf-8", "replace"),
                "headers": dict(self.headers), "delay_s": self.delay_s, "reset": self.reset,
                "malformed": self.malformed, "truncated": self.truncated, "content_type": self.content_type}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        import base64

        known = {"route", "status", "body", "body_b64", "headers", "delay_s", "reset", "malformed",
                 "truncated", "content_type", "count"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        body: bytes | str | None = data.get("body")
        if data.get("body_b64") is not None:
            body = base64.b64decode(str(data["body_b64"]))
        headers = data.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError("headers must be an object")
        return cls(route=str(data.get("route", "api")),
                   status=None if data.get("status") is None else int(data["status"]),
                   body=body, headers={str(k): str(v) for k, v in headers.items()},
                   delay_s=float(data.get("delay_s", 0.0)), reset=bool(data.get("reset", False)),
                   malformed=bool(data.get("malformed", False)), truncated=bool(data.get("truncated", False)),
                   content_type=data.get("content_type"))


class FaultQueue:
    def __init__(self) -> None:
        self._pending: list[list[Any]] = []  # [fault, remaining count or None for "until cleared"]
        self._lock = threading.Lock()

    def add(self, fault: Fault, count: int | None = 1) -> None:
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or None: until cleared)")
        with self._lock:
            self._pending.append([fault, count])

    def take(self, route: str) -> Fault | None:
        with self._lock:
            for entry in self._pending:
                fault: Fault = entry[0]
                if fault.route in (route, "any"):
                    if entry[1] is not None:
                        entry[1] -= 1
                        if entry[1] == 0:
                            self._pending.remove(entry)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry[0].to_json(), count=entry[1]) for entry in self._pending]
