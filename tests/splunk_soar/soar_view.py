"""The Splunk SOAR custom view as an analyst sees it: real runner results, the app's view, a real browser.

Shared by the browser test (tests/splunk_soar/test_view_in_browser.py) and the README screenshot
(scripts/soar-view-screenshot.py), so the picture in the README is what the test checked.

1. `run_scenario`: the SDK's runner (a subprocess) against the HTTPS emulator, one action run on three
   assets as SOAR would show it in one view: a common IP answered from the result cache, a never-seen
   IP, an invalid input and a rare IP (asset "reader"); an IP the "noperm" application may not read
   (403); an IP Defender throttles (429, Retry-After 30 s; a 5 s item budget gives up at once).
2. `render_view`: those results through the app's view handler (the SDK's Jinja renderer and widget
   templates) to HTML; `host_page` puts the widget in a page standing in for SOAR's widget frame
   (SOAR's own stylesheet is not available outside SOAR; the cards carry their own styles).
3. `Chromium`: headless Debian chromium reads the page's *rendered* text (`innerText`, which leaves
   out whatever CSS hides) via `--dump-dom`, and takes a screenshot.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from soar_helpers import APP_DIR, REPO, SoarResult, SoarRunner

sys.path.append(str(REPO / "tests"))  # appended: tests/emulator/ must not shadow the emulator package
from pngtext import png_text, stamp_png  # tests/pngtext.py, shared with the TheHive screenshot

__all__ = ["png_text", "stamp_png"]

CHROMIUM_ENV = "MDE_CHROMIUM"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-device-scale-factor=1",
)
VIEW_CONTEXT = {"QS": {}, "container": 1, "app": 1, "no_connection": False, "google_maps_key": False}
INVALID_IP = "10.20.30.400"
FORBIDDEN_IP = "192.168.7.20"
THROTTLED_IP = "185.199.108.153"
RETRY_AFTER_S = 30


# --- 1. real results ---------------------------------------------------------------------------

@dataclass
class Scenario:
    """What the view is rendered from, and what an analyst must find in it."""

    app_runs: list[tuple[dict[str, int], list[SoarResult]]]
    ips: list[str] = field(default_factory=list)  # every input IP, in input order

    @property
    def results(self) -> list[SoarResult]:
        return [r for _, results in self.app_runs for r in results]

    @property
    def failed(self) -> list[SoarResult]:
        return [r for r in self.results if not r.success]


def rare_ip(emu: Any, threshold: int = 5) -> str:
    """A rare IP of the synthetic organisation: a public IPv4 address first seen in the last day (so
    its card shows novelty) when there is one, else the first rare IP."""
    now = datetime.now(UTC)
    fallback = None
    for ip in emu.org.data.ips:
        stats = emu.org.stats_detail(ip, 720, None)
        if not 1 <= stats.prevalence <= threshold:
            continue
        fallback = fallback or ip
        address = ipaddress.ip_address(ip)
        if (address.version == 4 and address.is_global and stats.prevalence > 1
                and now - stats.first_seen < timedelta(hours=20)):
            return ip
    assert fallback, "the emulator's organisation has no rare IP"
    return fallback


def write_asset(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def run_scenario(emu: Any, runner: SoarRunner, work_dir: Path) -> Scenario:
    """Three app runs through the SDK's runner, the results as the runner printed them."""
    from emulator import Fault

    reader = write_asset(work_dir / "reader.json", emu.connector_config(app="reader", auth="secret"))
    noperm = write_asset(work_dir / "noperm.json", emu.connector_config(app="noperm", auth="secret"))
    hurried = write_asset(work_dir / "reader-5s.json",
                          emu.connector_config(app="reader2", auth="secret") | {"item_budget_s": 5})
    common = emu.org.most_popular(1)[0]
    never = next(ip for ip in emu.org.sample_ips(5, seen=False) if ipaddress.ip_address(ip).version == 4)
    rare = rare_ip(emu)

    def run(asset: Path, ips: list[str]) -> tuple[dict[str, int], list[SoarResult]]:
        out = runner.run("get-ip-statistics", asset, {"ip": ", ".join(ips), "lookback_hours": 720})
        assert len(out.results) == len(ips), out.stdout[-3000:] + out.stderr[-3000:]
        ok = sum(r.success for r in out.results)
        return {"total_objects": len(ips), "total_objects_successful": ok}, out.results

    run(reader, [common])  # an earlier lookup: the next answer for it comes from the result cache
    first = run(reader, [common, never, INVALID_IP, rare])
    second = run(noperm, [FORBIDDEN_IP])
    emu.inject_fault(Fault(route="api", status=429, headers={"Retry-After": str(RETRY_AFTER_S)}), count=1)
    try:
        third = run(hurried, [THROTTLED_IP])
    finally:
        emu.clear_faults()
    return Scenario([first, second, third], ips=[common, never, INVALID_IP, rare, FORBIDDEN_IP, THROTTLED_IP])


# --- 2. the app's view -------------------------------------------------------------------------

def app_module() -> Any:
    sys.path.insert(0, str(APP_DIR.parent))
    try:
        return importlib.import_module("splunk_soar.src.app")
    finally:
        sys.path.remove(str(APP_DIR.parent))


def view_module() -> Any:
    app_module()
    return importlib.import_module("splunk_soar.src.view")


def soar_action_results(results: Iterable[SoarResult]) -> list[Any]:
    """The runner's printed results as the action result objects SOAR hands a view."""
    from soar_sdk.action_results import ActionResult

    out = []
    for result in results:
        soar = ActionResult(status=result.success, message=result.message, param=dict(result.params))
        for row in result.data:
            soar.add_data(row)
        soar.set_summary(dict(result.summary))
        out.append(soar)
    return out


def render_view(scenario: Scenario, **variant: Any) -> str:
    """The widget HTML by the app's own handler; ``variant`` (template, templates_dir) renders another
    template through the same machinery."""
    runs = [(summary, soar_action_results(results)) for summary, results in scenario.app_runs]
    context = dict(VIEW_CONTEXT)
    if variant:
        return str(view_module().render(runs, context, **variant))
    return str(app_module().render_ip_statistics("get_ip_statistics", runs, context))


HOST_STYLE = """
  body { margin: 0; background: #e9edf1; font-family: "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
  .soar-frame { width: 820px; margin: 16px; background: #fff; border: 1px solid #cfd6dd; border-radius: 4px;
                box-shadow: 0 1px 3px rgba(0,0,0,.12); overflow: hidden; }
  .grid-title { background: #0b5cab; color: #fff; padding: 8px 12px; font-size: 14px; font-weight: 600; }
  .grid-title .pull-left, .grid-title .tools, .grid-title .widget-date-range-text, .fa, .hidden,
  .dropdown-menu { display: none !important; }
  .grid-body { padding: 10px 12px 2px; }
"""

VISIBLE_TEXT_SCRIPT = """
  (function () {
    var widget = document.getElementById("soar-frame");
    var root = document.documentElement;
    root.setAttribute("data-visible-text", widget.innerText);
    root.setAttribute("data-page-height", String(Math.ceil(document.body.scrollHeight)));
  })();
"""


def host_page(widget_html: str, title: str = "MDE IP Statistics: Splunk SOAR custom view") -> str:
    """A page holding the widget as SOAR's container view would (frame, title bar; menus hidden)."""
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HOST_STYLE}</style></head>\n<body><div id=\"soar-frame\" class=\"soar-frame\">\n"
            f"{widget_html}\n</div><script>{VISIBLE_TEXT_SCRIPT}</script></body></html>\n")


# --- 3. a real browser -------------------------------------------------------------------------

class _RootAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attributes: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html" and not self.attributes:
            self.attributes = dict(attrs)


def find_chromium() -> str | None:
    """$MDE_CHROMIUM, else `chromium` on PATH (scripts/chromium.sh installs Debian's package)."""
    return os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")


@dataclass
class Rendered:
    visible_text: str
    page_height: int


class Chromium:
    """Headless Chromium, one process per call, each with a throwaway profile; nothing leaves loopback."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def _run(self, *args: str, timeout: float = 90) -> str:
        with tempfile.TemporaryDirectory(prefix="mde-chromium-") as profile:
            command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def render(self, page: Path) -> Rendered:
        """The page's rendered text (what a person can see) and height, after its scripts ran."""
        dom = self._run("--dump-dom", page.resolve().as_uri())
        parser = _RootAttributes()
        parser.feed(dom)
        text = parser.attributes.get("data-visible-text")
        if text is None:
            raise RuntimeError("the page's script did not run: no data-visible-text in the dumped DOM")
        return Rendered(text, int(parser.attributes.get("data-page-height") or 0))

    def screenshot(self, page: Path, png: Path, width: int, height: int) -> Path:
        png.parent.mkdir(parents=True, exist_ok=True)
        self._run(f"--screenshot={png.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri())
        if not png.is_file() or png.stat().st_size == 0:
            raise RuntimeError(f"chromium wrote no screenshot at {png}")
        return png


# --- the README picture is of the current view ------------------------------------------------

README_PICTURE = REPO / "docs" / "splunk-soar-view.png"
FINGERPRINT_KEY = "mde-view-fingerprint"
VIEW_SOURCES = (APP_DIR / "templates" / "ip_statistics.html", APP_DIR / "src" / "view.py", Path(__file__))


def view_fingerprint() -> str:
    """sha256 of what decides the picture: the template, the view module and this page harness."""
    digest = hashlib.sha256()
    for source in VIEW_SOURCES:
        digest.update(source.name.encode() + b"\0" + source.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


# --- the check ---------------------------------------------------------------------------------

def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def missing_from_view(visible_text: str, expected: Iterable[str]) -> list[str]:
    """Each expected string that a person cannot read in the view (whitespace-insensitive)."""
    seen = _squash(visible_text)
    return [item for item in expected if _squash(item) not in seen]


def what_an_analyst_must_see(scenario: Scenario) -> list[str]:
    """Every input IP, and for each failure its message (the advice) and its correlation id."""
    must = list(scenario.ips)
    for result in scenario.failed:
        must.append(result.message)
        correlation = (result.summary.get("error") or {}).get("correlation_id")
        if correlation:
            must.append(correlation)
    return must


def write_page(widget_html: str, directory: Path, name: str = "view.html") -> Path:
    page = directory / name
    page.write_text(host_page(widget_html), encoding="utf-8")
    return page
