"""package.sh, as a new user runs it: the core wheel and sdist, and the installable SOAR app tarball."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from soar_helpers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    done = subprocess.run(["bash", str(REPO / "package.sh")], cwd=REPO, capture_output=True, text=True,
                          timeout=1200, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-4000:]
    dist = REPO / "dist"
    [tgz] = dist.glob("mde-ipstats-splunk-soar-*.tgz")
    [wheel] = dist.glob("mde_ipstats-*-py3-none-any.whl")
    [sdist] = dist.glob("mde_ipstats-*.tar.gz")
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        manifest = json.load(tar.extractfile(f"{top}/manifest.json"))  # type: ignore[arg-type]
        core = tar.extractfile(next(n for n in names if "/wheels/" in n and "/mde_ipstats-" in n))
        core_bytes = core.read()  # type: ignore[union-attr]
    return {"tgz": tgz, "wheel": wheel, "sdist": sdist, "names": names, "top": top, "manifest": manifest,
            "core_bytes": core_bytes, "stderr": done.stderr}


def test_dist_has_the_core_wheel_sdist_and_app_tarball(built: dict[str, Any]) -> None:
    assert built["wheel"].stat().st_size > 10_000
    assert built["sdist"].stat().st_size > 10_000
    assert built["tgz"].stat().st_size > 1_000_000


def test_the_tarball_manifest_lists_every_action_with_the_defender_paths(built: dict[str, Any]) -> None:
    actions = {a["identifier"]: a for a in built["manifest"]["actions"]}
    assert set(actions) == {"test_connectivity", "get_ip_statistics", "start_sign_in", "complete_sign_in",
                            "sign_out"}
    assert set(actions["complete_sign_in"]["parameters"]) == {"wait_s"}
    paths = {o["data_path"] for o in actions["get_ip_statistics"]["output"]}
    for field in ("ipAddress", "organizationPrevalence", "orgPrevalence", "orgFirstSeen", "orgLastSeen",
                  "seenInOrg", "lookBackHours"):
        assert f"action_result.data.*.{field}" in paths
    assert {"action_result.summary.organization_prevalence", "action_result.summary.seen_in_org"} <= paths


def test_the_app_ships_the_very_core_wheel_of_dist(built: dict[str, Any]) -> None:
    shipped = hashlib.sha256(built["core_bytes"]).hexdigest()
    assert shipped == hashlib.sha256(built["wheel"].read_bytes()).hexdigest()


def test_every_declared_wheel_is_in_the_tarball_and_nothing_of_the_emulator(built: dict[str, Any]) -> None:
    names = set(built["names"])
    for wheel in built["manifest"]["pip313_dependencies"]["wheel"]:
        assert f"{built['top']}/{wheel['input_file']}" in names, wheel
    assert not [n for n in names if "emulator" in n.lower()]
    assert not [n for n in names if n.endswith("soarapps_wrapper.py") or "/tests/" in n]


def test_the_tarball_has_the_app_code_view_template_logos_and_readme(built: dict[str, Any]) -> None:
    top = built["top"]
    for path in ("src/app.py", "src/declarations.py", "src/state.py", "src/view.py", "templates/ip_statistics.html",
                 "logo.svg", "logo_dark.svg", "README.md", "manifest.json"):
        assert f"{top}/{path}" in built["names"], path


def test_the_core_wheel_excludes_the_adapter(built: dict[str, Any]) -> None:
    import zipfile

    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
    assert "connector/manifest.json" in names
    assert not [n for n in names if "splunk_soar" in n or n.startswith("emulator/")]


def test_rebuilding_is_repeatable(built: dict[str, Any], tmp_path: Path) -> None:
    first = hashlib.sha256(built["wheel"].read_bytes()).hexdigest()
    done = subprocess.run(["bash", str(REPO / "package.sh")], cwd=REPO, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = (REPO / "dist").glob("mde_ipstats-*-py3-none-any.whl")
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == first
