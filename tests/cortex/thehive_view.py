"""The report templates rendered as TheHive renders them: AngularJS 1.8 + Bootstrap 3, in headless Chromium.

TheHive puts a job's report in a scope (`content`, `success`, `artifact`) and compiles the template
into it. The page built here does the same with Debian's AngularJS and Bootstrap (`libjs-angularjs`,
`libjs-bootstrap`; installed on demand when running as root, like scripts/chromium.sh does for the
browser), then writes what a person can read (`innerText`) into an attribute of the root element,
which `chromium --dump-dom` returns. TheHive's own `fang` filter is stood in for by the identity.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .jobs import ROOT

ANGULAR = Path("/usr/share/javascript/angular.js/angular.min.js")
BOOTSTRAP = Path("/usr/share/javascript/bootstrap/css/bootstrap.min.css")
PACKAGES = ("libjs-angularjs", "libjs-bootstrap")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
                  "--allow-file-access-from-files", "--force-device-scale-factor=1")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="{bootstrap}">
<script type="application/json" id="job">{job}</script>
<script src="{angular}"></script>
<script>
angular.module("thehive", [])
  .filter("fang", function () {{ return function (value) {{ return value; }}; }})
  .controller("Report", function ($scope, $timeout) {{
    var job = JSON.parse(document.getElementById("job").textContent);
    $scope.content = job.content; $scope.success = job.success; $scope.artifact = job.artifact;
    $timeout(function () {{
      document.documentElement.setAttribute("data-visible-text", document.body.innerText);
    }});
  }});
</script>
</head>
<body ng-app="thehive" ng-controller="Report" style="padding: 12px; width: 760px">
{template}
</body></html>
"""


def ensure_libraries() -> None:
    """Debian's AngularJS and Bootstrap, installed when missing (root only); otherwise a clear failure."""
    if ANGULAR.is_file() and BOOTSTRAP.is_file():
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"install {' '.join(PACKAGES)} (Debian) to render the TheHive templates")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    installed = subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, text=True,
                               env=env, timeout=300, check=False)
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=300, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True, env=env,
                       timeout=300, check=True)


def chromium() -> str:
    """Debian's chromium, through scripts/chromium.sh (which installs it when missing)."""
    found = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, timeout=600,
                           check=False)
    if found.returncode != 0:
        raise RuntimeError(f"scripts/chromium.sh found no browser:\n{found.stderr[-2000:]}")
    return found.stdout.strip().splitlines()[-1]


def page(template: Path, job: dict[str, Any], into: Path) -> Path:
    """The template compiled against ``job`` ({content, success, artifact}) as TheHive would."""
    payload = json.dumps(job).replace("</", "<\\/")
    into.write_text(PAGE.format(bootstrap=BOOTSTRAP.as_uri(), angular=ANGULAR.as_uri(), job=payload,
                                template=template.read_text()), encoding="utf-8")
    return into


def _run(binary: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="mde-cortex-chromium-") as profile:
        done = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=90, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def render(binary: str, html_page: Path) -> tuple[str, str]:
    """(what a person reads, the rendered DOM) of the page after AngularJS compiled it."""
    dom = _run(binary, "--dump-dom", html_page.resolve().as_uri())
    match = re.search(r'<html[^>]*\sdata-visible-text="([^"]*)"', dom)
    if match is None:
        raise RuntimeError("AngularJS did not run: no data-visible-text in the dumped DOM")
    return re.sub(r"\s+", " ", html.unescape(match.group(1))).strip(), dom


def screenshot(binary: str, html_page: Path, png: Path, height: int = 560) -> Path:
    _run(binary, f"--screenshot={png.resolve()}", f"--window-size=800,{height}", html_page.resolve().as_uri())
    return png
