"""Requests and responses as plain values, so that handlers are testable without sockets and the
fault layer can rewrite any answer before it is written."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

JSON = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    raw_path: str                      # path and query exactly as received
    headers: dict[str, str]            # lower-cased names
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.raw_path).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.raw_path).query, keep_blank_values=True)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = JSON

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None,
             content_type: str = JSON) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, dict(headers or {}), content_type)


@dataclass
class Outcome:
    """A response plus what the emulator learnt while producing it (for counters and the log)."""

    response: Response
    client_id: str | None = None
    tenant_id: str | None = None
    detail: str | None = None
    throttled: bool = False
