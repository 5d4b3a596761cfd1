"""scripts/package-cortex.sh: the archive Cortex installs from, and the report templates TheHive imports."""

from __future__ import annotations

import json
import os
import re
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from connector.manifest import load_manifest
from connector.platforms.cortex import flavor

from .jobs import ANALYZER, ROOT

VERSION = load_manifest()["version"]
TEMPLATES = f"thehive-templates/{ANALYZER}_1_0"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_archive_holds_the_analyzer_folder_the_docker_catalog_and_the_templates(unpacked: Path) -> None:
    assert files_under(unpacked) == {
        f"analyzers/{ANALYZER}/{ANALYZER}.json",
        f"analyzers/{ANALYZER}/mde_ipstatistics.py",
        f"analyzers/{ANALYZER}/requirements.txt",
        f"analyzers/{ANALYZER}/README.md",
        f"analyzers/{ANALYZER}/Dockerfile",
        f"analyzers/{ANALYZER}/assets/logo.svg",
        f"analyzers/{ANALYZER}/assets/logo.png",
        f"analyzers/{ANALYZER}/assets/long_report.png",
        f"analyzers/{ANALYZER}/wheels/mde_ipstats-{VERSION}-py3-none-any.whl",
        "analyzers/mde-ipstats-docker-catalog.json",
        f"{TEMPLATES}/short.html",
        f"{TEMPLATES}/long.html",
    }


def test_the_program_is_executable_with_a_shebang(analyzer_dir: Path) -> None:
    program = analyzer_dir / "mde_ipstatistics.py"
    assert os.access(program, os.X_OK)
    assert program.read_text().startswith("#!/usr/bin/env python3\n")


def test_the_definition_shipped_is_the_committed_one_and_its_paths_exist(analyzer_dir: Path) -> None:
    shipped = json.loads((analyzer_dir / f"{ANALYZER}.json").read_text())
    assert shipped == json.loads(flavor.DEFINITION.read_text())
    assert (analyzer_dir.parent / shipped["command"]).is_file()
    assert (analyzer_dir / shipped["service_logo"]["path"]).is_file()


def test_the_docker_catalog_is_the_definition_with_an_image(analyzer_dir: Path) -> None:
    catalog = json.loads((analyzer_dir.parent / "mde-ipstats-docker-catalog.json").read_text())
    definition = json.loads(flavor.DEFINITION.read_text())
    assert catalog == [{**definition, "dockerImage": f"mde-ipstats/mde_ipstatistics:{definition['version']}"}]


def test_requirements_install_the_shipped_core_wheel_and_cortexutils(analyzer_dir: Path) -> None:
    lines = [line for line in (analyzer_dir / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines == ["--find-links wheels", f"mde-ipstats=={VERSION}", "cortexutils>=2.2.1,<3"]


def test_cortexutils_is_no_dependency_of_the_core(analyzer_dir: Path) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = [*pyproject["project"]["dependencies"],
                *[d for group in pyproject["project"].get("optional-dependencies", {}).values() for d in group]]
    assert not [d for d in declared if "cortexutils" in d.lower()]
    with zipfile.ZipFile(next((analyzer_dir / "wheels").glob("*.whl"))) as wheel:
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
        assert requires and not [line for line in requires if "cortexutils" in line.lower()]
        assert not [n for n in wheel.namelist() if n.startswith("emulator/")]


def test_the_dockerfile_copies_what_the_folder_holds_and_runs_the_program(analyzer_dir: Path) -> None:
    dockerfile = (analyzer_dir / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE):
        assert source == "." or (analyzer_dir / source).exists(), source
    assert f'ENTRYPOINT ["python", "{ANALYZER}/mde_ipstatistics.py"]' in dockerfile
    assert "/job" in dockerfile  # says where Cortex mounts the job


def result_fields() -> tuple[set[str], set[str]]:
    """(fields of the result object, fields of one data item) per manifest.json's output schema."""
    schema = load_manifest()["actions"]["get_ip_statistics"]["output"]
    stats: dict[str, Any] = schema["$defs"]["IpStatistics"]["properties"]
    return set(schema["properties"]), set(stats)


def test_the_long_template_reads_only_fields_the_result_has(unpacked: Path) -> None:
    html = (unpacked / TEMPLATES / "long.html").read_text()
    top, stats = result_fields()
    used_top = set(re.findall(r"\bcontent\.(\w+)", html))
    used_stats = set(re.findall(r"\bstats\.(\w+)", html))
    assert used_top - {"errorMessage", "analyzer_state"} <= top, used_top - top  # analyzer_state: the analyzer's
    assert used_stats <= stats, used_stats - stats
    for needed in ("verdict", "ipScope", "organizationPrevalence", "orgFirstSeen", "orgLastSeen", "lookBackHours"):
        assert needed in used_stats
    assert 'ng-if="success"' in html and 'ng-if="!success"' in html and "content.errorMessage" in html


def test_the_short_template_shows_each_taxonomy_with_its_levels_colour(unpacked: Path) -> None:
    html = (unpacked / TEMPLATES / "short.html").read_text()
    assert 'ng-repeat="t in content.taxonomies"' in html
    assert "{{t.namespace}}:{{t.predicate}}=" in html and "{{t.value}}" in html
    for level, label in {"info": "label-info", "safe": "label-success", "suspicious": "label-warning",
                         "malicious": "label-danger"}.items():
        assert f"'{level}': '{label}'" in html


def test_the_readme_documents_every_configuration_item(analyzer_dir: Path) -> None:
    readme = (analyzer_dir / "README.md").read_text()
    definition = json.loads(flavor.DEFINITION.read_text())
    undocumented = [item["name"] for item in definition["configurationItems"] if f"`{item['name']}`" not in readme]
    assert undocumented == []


def test_the_readme_headings_start_at_level_3_as_the_catalogue_expects(analyzer_dir: Path) -> None:
    """Cortex-Analyzers' documentation builder puts each analyzer's README under its own page headings:
    the README starts with `### <name>` and goes deeper from there (AbuseIPDB, GreyNoise)."""
    lines = (analyzer_dir / "README.md").read_text().splitlines()
    assert lines[0] == "### MDE_IPStatistics"
    in_code = False
    for line in lines:
        in_code ^= line.startswith("```")
        if not in_code and line.startswith("#"):
            assert re.match(r"#{3,6} \S", line), line


def test_the_catalogue_pictures_are_shipped_and_show_the_current_sources(analyzer_dir: Path) -> None:
    """assets/logo.png and assets/long_report.png, made by scripts/cortex-report-screenshot.py, carry a
    fingerprint of what they show: a changed template or logo without new pictures fails here."""
    import importlib.util
    import sys

    sys.path.append(str(ROOT / "tests"))
    from pngtext import png_text

    spec = importlib.util.spec_from_file_location("shots", ROOT / "scripts" / "cortex-report-screenshot.py")
    assert spec and spec.loader
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    for name, sources in (("logo.png", shots.LOGO_SOURCES), ("long_report.png", shots.REPORT_SOURCES)):
        shipped = analyzer_dir / "assets" / name
        assert png_text(shipped).get(shots.FINGERPRINT_KEY) == shots.fingerprint(sources), (
            f"{name} is older than its sources: run .venv/bin/python scripts/cortex-report-screenshot.py")
