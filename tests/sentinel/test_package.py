"""scripts/package-sentinel.sh: the zip-deploy Function App, unpacked and run on its own (no .venv), and
azure-functions-doctor's verdict on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from connector.manifest import load_manifest
from emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
VERSION = load_manifest()["version"]
SITE = ".python_packages/lib/site-packages"


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("sentinel-dist")
    built = subprocess.run([str(ROOT / "scripts" / "package-sentinel.sh"), str(dist)], capture_output=True,
                           text=True, timeout=600, check=False)
    assert built.returncode == 0, f"scripts/package-sentinel.sh failed:\n{built.stderr[-4000:]}"
    archive = Path(built.stdout.strip().splitlines()[-1])
    assert archive == dist / f"mde-ipstats-sentinel-{VERSION}.zip"
    return archive


@pytest.fixture(scope="session")
def app_root(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sentinel-app")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root)
    return root


def test_the_zip_is_a_function_app_with_its_dependencies_and_the_templates(package: Path) -> None:
    names = zipfile.ZipFile(package).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"function_app.py", "host.json", "requirements.txt", ".funcignore", ".python_packages", "templates"}
    for needed in ("connector/actions.py", "connector/managed_identity.py", "connector/platforms/sentinel/enrich.py",
                   "connector/manifest.json", "msal/managed_identity.py", "azure/functions/__init__.py",
                   "requests/__init__.py", "pydantic/__init__.py", "pydantic_core/__init__.py",
                   "cryptography/__init__.py", "redis/__init__.py"):
        assert f"{SITE}/{needed}" in names, needed
    assert {"templates/azuredeploy.json", "templates/function-app/azuredeploy.json"} <= set(names)
    top_level = {name.removeprefix(f"{SITE}/").split("/")[0] for name in names if name.startswith(SITE)}
    assert not {"emulator", "tests"} & top_level  # the emulator and this repository's tests stay home
    assert not [n for n in names if "__pycache__" in n]
    assert package.stat().st_size < 20 * 1024 * 1024


def test_compiled_code_is_for_cpython_311_on_linux_x86_64(package: Path) -> None:
    binaries = [n for n in zipfile.ZipFile(package).namelist() if n.endswith(".so")]
    assert binaries, "pydantic-core, cryptography and rpds-py ship compiled code"
    for name in binaries:
        assert "cpython-311-x86_64-linux-gnu" in name or name.endswith(".abi3.so"), name
    tags = [zipfile.ZipFile(package).read(n).decode() for n in zipfile.ZipFile(package).namelist()
            if n.endswith(".dist-info/WHEEL")]
    platform_tags = {line.split(": ")[1] for text in tags for line in text.splitlines() if line.startswith("Tag: ")}
    assert all(t.endswith("-any") or ("manylinux" in t and "x86_64" in t) for t in platform_tags), platform_tags


def test_requirements_pin_what_the_package_holds(app_root: Path) -> None:
    pins = [line for line in (app_root / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    names = {line.split("==")[0].lower() for line in pins}
    assert all("==" in line for line in pins) and {"azure-functions", "msal", "requests"} <= names
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in (app_root / SITE).glob("*.dist-info")}
    assert {n.replace("_", "-") for n in names} <= installed
    assert "mde-ipstats" in installed and "mde-ipstats" not in names


def test_the_packaged_app_answers_on_its_own(app_root: Path, emulator: Emulator) -> None:
    """The unpacked app in a Python without site-packages (-S): only what the zip holds is importable. It is
    called as the host calls it, against the emulator, with the Function App's environment."""
    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(app_root)!r}, {str(app_root / SITE)!r}]\n"
        "import azure.functions as func, function_app, connector\n"
        f"assert connector.__file__.startswith({str(app_root)!r}), connector.__file__\n"
        "fn = function_app.ipstats.build().get_user_function()\n"
        "body = json.dumps({'IPs': [{'Address': '10.209.67.177:443'}, {'Address': '[2001:db8::1]:80'}]}).encode()\n"
        "response = fn(func.HttpRequest(method='POST', url='/api/ipstats', body=body))\n"
        "print(response.status_code, response.get_body().decode())\n")
    environment = {"PATH": os.environ["PATH"], "TMPDIR": str(app_root.parent), **emulator.identity_environment(),
                   **{f"MDE_{k.upper()}": v for k, v in emulator.managed_identity_config().items()}}
    done = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=120,
                          env=environment, cwd=app_root, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    status, _, body = done.stdout.partition(" ")
    document = json.loads(body)
    assert status == "200"
    assert [r["summary"]["verdict"] for r in document["results"]] == ["common", "not_seen"]
    assert emulator.counters()["identity_token_requests"] == 1


def test_azure_functions_doctor_passes_on_the_packaged_app(app_root: Path, tmp_path: Path) -> None:
    made = subprocess.run([str(ROOT / "scripts" / "funcdoctor-venv.sh")], capture_output=True, text=True,
                          timeout=600, check=False)
    assert made.returncode == 0, made.stderr[-3000:]
    doctor = made.stdout.strip().splitlines()[-1]
    summary = tmp_path / "summary.json"
    ran = subprocess.run([doctor, "doctor", "--path", str(app_root), "--profile", "full", "--format", "json",
                          "--deployment-mode", "local-prebuilt", "--hosting-plan", "linux-consumption",
                          "--target-python", "3.11", "--summary-json", str(summary)],
                         capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, "COLUMNS": "200"})
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    report = json.loads(ran.stdout)
    assert report["metadata"]["programming_model"] == "v2"
    checks = [item for section in report["results"] for item in section.get("items", [section])]
    failed = [c for c in checks if c.get("status") == "fail"]
    assert checks and not failed, failed
    counts = json.loads(summary.read_text())
    assert counts.get("failed", counts.get("fail", 0)) == 0, counts
