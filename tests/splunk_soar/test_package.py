"""package.sh as a new user runs it: `git clone`, then `./package.sh`, nothing set up by hand.

The clone is of the committed tree (what a user gets). It makes its own venvs, as a new user's would be
made: .venv through ./run.sh setup, .venv-soar and .venv-siem through their scripts (pip's and uv's
caches keep that short). Only demisto-sdk's venv is this checkout's (MDE_XSOAR_SDK_VENV): it holds
demisto-sdk alone, nothing of the repository, so sharing it cannot point anything at the clone (venvs
with the repository installed editable must not be shared: the clone's scripts would re-point them at
a directory the test then deletes). Every platform's own validator runs inside the build: the SOAR
SDK's packager, demisto-sdk validate and prepare-content, the Cortex flavor check, UCC.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from soar_helpers import APP_DIR, REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # a fresh clone makes its venvs

ARTEFACTS = {
    "mde_ipstats-<v>-py3-none-any.whl": "mde_ipstats-*-py3-none-any.whl",
    "mde_ipstats-<v>.tar.gz": "mde_ipstats-*.tar.gz",
    "mde-ipstats-splunk-soar-<v>.tgz": "mde-ipstats-splunk-soar-*.tgz",
    "mde-ipstats-xsoar-<v>.zip": "mde-ipstats-xsoar-[0-9]*.zip",
    "mde-ipstats-xsoar-docker-<v>.tgz": "mde-ipstats-xsoar-docker-*.tgz",
    "mde-ipstats-cortex-<v>.tar.gz": "mde-ipstats-cortex-*.tar.gz",
    "TA-mde-ipstats-<v>.tgz": "TA-mde-ipstats-*.tgz",
    "mde-ipstats-sentinel-<v>.zip": "mde-ipstats-sentinel-*.zip",
}
"""Every artefact of dist/, as the README's package table names it -> its file name pattern."""


def clone_env() -> dict[str, str]:
    env = dict(os.environ)
    env["MDE_XSOAR_SDK_VENV"] = str(REPO / ".venv-xsoar-sdk")
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("fresh") / "mde-ipstats"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(where)], check=True, timeout=120)
    assert not (where / ".venv").exists() and not (where / "dist").exists()
    return where


@pytest.fixture(scope="module")
def built(clone: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    started = time.monotonic()
    done = subprocess.run(["./package.sh"], cwd=clone, capture_output=True, text=True, timeout=1500,
                          env=clone_env(), stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-6000:]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # shown even with output captured: the figure CI time is planned with
        reporter.write_line(f"\nfresh clone: ./package.sh built every artefact in {seconds:.0f} s")
    dist = clone / "dist"
    [tgz] = dist.glob("mde-ipstats-splunk-soar-*.tgz")
    [wheel] = dist.glob("mde_ipstats-*-py3-none-any.whl")
    [sdist] = dist.glob("mde_ipstats-*.tar.gz")
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        manifest = json.load(tar.extractfile(f"{top}/manifest.json"))  # type: ignore[arg-type]
        core = tar.extractfile(next(n for n in names if "/wheels/" in n and "/mde_ipstats-" in n))
        core_bytes = core.read()  # type: ignore[union-attr]
    return {"dist": dist, "tgz": tgz, "wheel": wheel, "sdist": sdist, "names": names, "top": top,
            "manifest": manifest, "core_bytes": core_bytes, "stderr": done.stderr, "stdout": done.stdout,
            "seconds": seconds}


def test_a_fresh_clone_builds_every_artefact_the_readme_lists(built: dict[str, Any]) -> None:
    everything = sorted(p.name for p in built["dist"].iterdir())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Packages: `./package.sh`"):]
    for shown, pattern in ARTEFACTS.items():
        found = list(built["dist"].glob(pattern))
        assert len(found) == 1 and found[0].stat().st_size > 10_000, (pattern, everything)
        assert str(found[0]) in built["stdout"], f"package.sh's closing list lacks {found[0].name}"
        assert f"| `{shown}` |" in table, f"the README's package table lacks {shown}"
    assert len(everything) == len(ARTEFACTS), f"dist/ holds artefacts the table does not list: {everything}"


def test_the_fresh_clone_set_up_its_own_venv(clone: Path, built: dict[str, Any]) -> None:
    assert (clone / ".venv" / "bin" / "python").is_file()
    assert "setting up .venv" in built["stderr"]


def test_each_platform_validator_ran_inside_the_build(built: dict[str, Any]) -> None:
    stderr = built["stderr"]
    assert re.search(r"demisto-sdk validate: \d+ checks, all passed", stderr)
    assert "app 'MDE IP Statistics'" in stderr or "app \"MDE IP Statistics\"" in stderr
    assert "add-on tree ok" in stderr


def test_one_target_builds_the_core_and_that_target_only(clone: Path, built: dict[str, Any]) -> None:
    first = hashlib.sha256(built["wheel"].read_bytes()).hexdigest()
    for artefact in built["dist"].glob("mde-ipstats-cortex-*.tar.gz"):
        artefact.unlink()
    done = subprocess.run(["./package.sh", "cortex"], cwd=clone, capture_output=True, text=True, timeout=600,
                          env=clone_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "splunk-soar (" not in done.stderr and "xsoar (" not in done.stderr
    assert len(list(built["dist"].glob("mde-ipstats-cortex-*.tar.gz"))) == 1
    [wheel] = built["dist"].glob("mde_ipstats-*-py3-none-any.whl")
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == first, "rebuilding the core is not repeatable"
    unknown = subprocess.run(["./package.sh", "sentinel-typo"], cwd=clone, capture_output=True, text=True,
                             timeout=120, env=clone_env(), stdin=subprocess.DEVNULL)
    assert unknown.returncode != 0 and "unknown target 'sentinel-typo'" in unknown.stderr


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


def test_the_tarball_has_the_app_code_view_logos_readme_license_notice_and_release_notes(
        built: dict[str, Any]) -> None:
    top = built["top"]
    for path in ("src/app.py", "src/declarations.py", "src/state.py", "src/view.py", "templates/ip_statistics.html",
                 "logo.svg", "logo_dark.svg", "README.md", "manifest.json", "LICENSE", "NOTICE",
                 "release_notes/unreleased.md"):
        assert f"{top}/{path}" in built["names"], path


def test_what_ships_overrides_nothing_of_the_sdk(built: dict[str, Any]) -> None:
    """No Python file in the tarball patches soar_sdk: the build's override (tools/) stays home."""
    with tarfile.open(built["tgz"]) as tar:
        sources = [n for n in built["names"] if n.endswith(".py") and "/wheels/" not in n]
        assert f"{built['top']}/src/app.py" in sources
        for name in sources:
            text = tar.extractfile(name).read().decode("utf-8")  # type: ignore[union-attr]
            assert "DEPENDENCIES_TO_BUILD" not in text and "UvWheel" not in text, name
            assert not re.search(r"soar_sdk\.\S+ = ", text), name


def test_the_app_project_names_its_authors_and_release_notes() -> None:
    project = tomllib.loads((APP_DIR / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["authors"] and all(a.get("name") for a in project["authors"])
    assert (APP_DIR / "release_notes" / "unreleased.md").read_text(encoding="utf-8").startswith("**Unreleased**")


def test_the_notice_attributes_every_wheel_the_app_ships(built: dict[str, Any]) -> None:
    """NOTICE is `soarapps manifests create-notice`'s: a Library entry for each wheel the packager ships (the
    SDK leaves out what SOAR itself provides, such as requests), and it is the one in the tarball."""
    notice = (APP_DIR / "NOTICE").read_text(encoding="utf-8")

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    listed = {norm(m.group(1)) for m in re.finditer(r"^Library: (\S+) - ", notice, re.M)}
    shipped = {norm(w["module"]) for w in built["manifest"]["pip313_dependencies"]["wheel"]}
    assert shipped and not shipped - listed, f"NOTICE lacks {sorted(shipped - listed)}: run create-notice (README)"
    assert notice.startswith("Splunk SOAR App: MDE IP Statistics\nMIT\n")
    with tarfile.open(built["tgz"]) as tar:
        assert tar.extractfile(f"{built['top']}/NOTICE").read().decode() == notice  # type: ignore[union-attr]


def test_the_core_wheel_excludes_the_adapter(built: dict[str, Any]) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
    assert "connector/manifest.json" in names
    assert not [n for n in names if "splunk_soar" in n or n.startswith("emulator/")]
