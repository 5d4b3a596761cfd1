"""tEXt chunks of PNG files: a screenshot made for a README carries a fingerprint of what it shows (a
template, the module that fills it), so a test can tell that the picture is of the current version.
Shared by the Splunk SOAR view's and the TheHive report's screenshots (scripts/*-screenshot.py)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def stamp_png(png: Path, key: str, value: str) -> None:
    """Add a tEXt chunk (key, value) before IEND: the picture says which view it shows."""
    raw = png.read_bytes()
    end = raw.rindex(b"IEND") - 4
    png.write_bytes(raw[:end] + _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")) + raw[end:])


def png_text(png: Path) -> dict[str, str]:
    """The tEXt chunks of a PNG."""
    raw, pos, out = png.read_bytes(), 8, {}
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        if kind == b"tEXt":
            key, _, value = raw[pos + 8:pos + 8 + length].partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return out
