#!/usr/bin/env python3
"""The TheHive Cortex analyzer's catalogue pictures: assets/logo.png and assets/long_report.png.

Cortex-Analyzers' catalogue shows each analyzer's `service_logo` (a PNG) and `screenshots` (the long
report). Both are made here by the headless-browser machinery the template tests use
(tests/cortex/thehive_view.py: Debian's chromium, AngularJS and Bootstrap, as TheHive renders a report):

- the logo: assets/logo.svg drawn by chromium at 256 x 256 on a transparent background;
- the long report: the shipped analyzer run as Cortex runs it (the archive's program, in a venv of its
  own requirements.txt) against the local HTTPS emulator for the documentation's example IP, and its
  report compiled into long.html. The script refuses to write a picture whose text lacks the answer.

Each PNG carries a fingerprint of its sources (a tEXt chunk), so a test can tell the pictures are current.

    scripts/chromium.sh && .venv/bin/python scripts/cortex-report-screenshot.py
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "tests"))  # appended: tests/emulator/ must not shadow the emulator package

from pngtext import stamp_png  # noqa: E402  (tests/pngtext.py)

from tests.cortex import jobs, thehive_view  # noqa: E402

CORTEX = REPO / "connector" / "platforms" / "cortex"
ASSETS = CORTEX / "assets"
LONG = CORTEX / "thehive-templates" / "MDE_IPStatistics_1_0" / "long.html"
FINGERPRINT_KEY = "mde-source-fingerprint"
LOGO_SOURCES = (ASSETS / "logo.svg",)
REPORT_SOURCES = (LONG, CORTEX / "mde_ipstatistics.py", REPO / "tests" / "cortex" / "thehive_view.py")
DOC_IP = "10.209.67.177"


def fingerprint(sources: tuple[Path, ...]) -> str:
    """sha256 of what decides a picture."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def logo(binary: str, out: Path, work: Path) -> None:
    page = work / "logo.html"
    page.write_text(f'<!doctype html><html><body style="margin:0;background:transparent">'
                    f'<img src="{(ASSETS / "logo.svg").as_uri()}" width="256" height="256"></body></html>',
                    encoding="utf-8")
    thehive_view._run(binary, f"--screenshot={out}", "--window-size=256,256", "--default-background-color=00000000",
                      page.as_uri())
    stamp_png(out, FINGERPRINT_KEY, fingerprint(LOGO_SOURCES))


def long_report(binary: str, out: Path, work: Path) -> str:
    from emulator import Emulator, EmulatorConfig

    jobs.unpack_archive(work / "dist", work / "unpacked")
    analyzer = work / "unpacked" / "analyzers" / "MDE_IPStatistics"
    python = jobs.analyzer_venv(analyzer)
    with Emulator(EmulatorConfig()) as emu:
        document = jobs.cortex_input(DOC_IP, jobs.items_for(emu, work / "state"), cacerts=Path(emu.ca_path).read_text())
        done = jobs.run_job(python, analyzer / "mde_ipstatistics.py", work / "job", document)
    if not done.output.get("success"):
        raise SystemExit(f"the analyzer failed: {done.output.get('errorMessage')}")
    scope = {"content": done.output["full"], "success": True, "artifact": {"data": DOC_IP}}
    page = thehive_view.page(LONG, scope, work / "long.page.html")
    text, _ = thehive_view.render(binary, page)
    if DOC_IP not in text or done.output["full"]["message"] not in text:
        raise SystemExit(f"the rendered report lacks the answer; no picture written:\n{text}")
    thehive_view.screenshot(binary, page, out, height=300)
    stamp_png(out, FINGERPRINT_KEY, fingerprint(REPORT_SOURCES))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=ASSETS)
    args = parser.parse_args(argv)
    thehive_view.ensure_libraries()
    binary = thehive_view.chromium()
    with tempfile.TemporaryDirectory(prefix="mde-cortex-shots-") as tmp:
        work = Path(tmp)
        logo(binary, args.assets / "logo.png", work)
        if not (args.assets / "long_report.png").exists():  # the archive ships it: a first run bootstraps
            (args.assets / "long_report.png").write_bytes((args.assets / "logo.png").read_bytes())
        long_report(binary, args.assets / "long_report.png", work)
    for name in ("logo.png", "long_report.png"):
        print(f"{args.assets / name} ({(args.assets / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
