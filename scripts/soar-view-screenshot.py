#!/usr/bin/env python3
"""Screenshot of the Splunk SOAR custom view for the README: docs/splunk-soar-view.png.

Made by the machinery the browser test checks (tests/splunk_soar/soar_view.py): the app's actions run
through the SDK's runner against the local HTTPS emulator (a common IP answered from the cache, a
never-seen IP, an invalid input, a rare IP, a 403 and a 429 on two more assets), the app's view
handler renders the results, headless Chromium loads the page, and the script refuses to write a
picture in which an input IP or a failure's message is not visible. The PNG carries a fingerprint of the
template, the view module and the page harness (a tEXt chunk), so a test can tell that the README's
picture is of the current view.

    scripts/soar-venv.sh && scripts/chromium.sh
    .venv-soar/bin/python scripts/soar-view-screenshot.py [--out docs/splunk-soar-view.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "splunk_soar"))

import soar_view  # noqa: E402  (the test helpers, above)
from soar_helpers import SoarRunner  # noqa: E402

WIDTH = 852  # the frame (820 px) and its margins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "splunk-soar-view.png")
    parser.add_argument("--html", type=Path, help="also keep the rendered page here")
    args = parser.parse_args(argv)

    binary = soar_view.find_chromium()
    if not binary:
        print("no chromium: run scripts/chromium.sh (or set MDE_CHROMIUM)", file=sys.stderr)
        return 2
    from emulator import Emulator, EmulatorConfig

    with tempfile.TemporaryDirectory(prefix="mde-soar-view-") as tmp:
        work = Path(tmp)
        with Emulator(EmulatorConfig()) as emu:
            scenario = soar_view.run_scenario(emu, SoarRunner(state_dir=work / "state", work_dir=work), work)
        page = soar_view.write_page(soar_view.render_view(scenario), work)
        chromium = soar_view.Chromium(binary)
        rendered = chromium.render(page)
        missing = soar_view.missing_from_view(rendered.visible_text, soar_view.what_an_analyst_must_see(scenario))
        if missing:
            print(f"not visible in the view, no screenshot written: {missing}", file=sys.stderr)
            return 1
        chromium.screenshot(page, args.out, WIDTH, rendered.page_height + 24)
        soar_view.stamp_png(args.out, soar_view.FINGERPRINT_KEY, soar_view.view_fingerprint())
        if args.html:
            args.html.write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"{args.out} ({len(scenario.ips)} IPs, {len(scenario.failed)} failed, {args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
