"""The integration's logo (MDEIPStatistics_image.png, 120x50 as XSOAR shows it), drawn by code.

A small bar chart (prevalence: few devices, many devices) on Defender blue, written as a PNG with the
standard library only, so that the committed image is reproducible: a test regenerates it and compares.

    python connector/platforms/xsoar/packtools/logo.py --write
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

if __package__:
    from .generated import generator_main
else:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generated import generator_main  # type: ignore[import-not-found,no-redef]

WIDTH, HEIGHT = 120, 50
PATH = Path(__file__).resolve().parents[1] / "Integrations" / "MDEIPStatistics" / "MDEIPStatistics_image.png"
BLUE = (0, 120, 212)
WHITE = (255, 255, 255)
PALE = (160, 205, 240)
BARS = (6, 14, 24, 34, 20, 10, 4)
"""Bar heights in pixels: a prevalence histogram."""


def _pixel(x: int, y: int) -> tuple[int, int, int, int]:
    """RGBA of one pixel: a rounded blue badge, white bars on a pale baseline, transparent corners."""
    radius = 8
    cx = min(max(x, radius), WIDTH - 1 - radius)
    cy = min(max(y, radius), HEIGHT - 1 - radius)
    if (x - cx) ** 2 + (y - cy) ** 2 > radius * radius:
        return (0, 0, 0, 0)
    baseline = HEIGHT - 9
    if y == baseline and 12 <= x < WIDTH - 12:
        return (*PALE, 255)
    bar_width, gap, left = 10, 4, 12
    for index, height in enumerate(BARS):
        x0 = left + index * (bar_width + gap)
        if x0 <= x < x0 + bar_width and baseline - height <= y < baseline:
            return (*WHITE, 255)
    return (*BLUE, 255)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png() -> bytes:
    rows = b"".join(b"\x00" + b"".join(bytes(_pixel(x, y)) for x in range(WIDTH)) for y in range(HEIGHT))
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b""))


def main(argv: list[str] | None = None) -> int:
    return generator_main(PATH, png, "the integration logo", argv)


if __name__ == "__main__":
    sys.exit(main())
