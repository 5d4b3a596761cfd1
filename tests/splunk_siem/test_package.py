"""The packaged add-on (dist/TA-mde-ipstats-<version>.tgz) is what Splunk 10.2+ can run, and nothing more."""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from connector.platforms.splunk_siem import globalconfig


def _conf(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string("\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                                 if not line.lstrip().startswith("#")))
    return parser


def test_the_tarball_is_named_for_the_manifest_version(addon_tgz: Path) -> None:
    version = globalconfig.load_manifest()["version"]
    assert addon_tgz.name == f"TA-mde-ipstats-{version}.tgz"
    with tarfile.open(addon_tgz) as tar:
        names = tar.getnames()
    assert all(n == "TA-mde-ipstats" or n.startswith("TA-mde-ipstats/") for n in names)
    assert not any("/local/" in n or n.endswith("passwords.conf") for n in names)


def test_commands_conf_asks_for_python_3_13_and_protocol_v2(addon_dir: Path) -> None:
    stanza = _conf(addon_dir / "default" / "commands.conf")["mdeipstats"]
    assert stanza["filename"] == "mdeipstats.py"
    assert stanza["chunked"] == "true"
    assert stanza["python.required"] == "3.13"
    assert stanza["python.version"] == "python3"
    assert (addon_dir / "bin" / stanza["filename"]).is_file()


def test_bundled_compiled_modules_are_built_for_cpython_3_13(addon_dir: Path) -> None:
    compiled = list((addon_dir / "lib").rglob("*.so"))
    assert any("pydantic_core" in str(p) for p in compiled)
    assert all("cpython-313-x86_64" in p.name or ".abi3." in p.name for p in compiled), compiled
    assert not list(addon_dir.rglob("*.pyc")) and not list(addon_dir.rglob("__pycache__"))


def test_lib_holds_the_core_and_the_sdk_but_no_other_platform_nor_unused_telemetry(addon_dir: Path) -> None:
    lib = addon_dir / "lib"
    assert (lib / "connector" / "actions.py").is_file() and (lib / "connector" / "manifest.json").is_file()
    assert (lib / "splunklib" / "searchcommands").is_dir()
    assert any(p.name.startswith("splunk_sdk-3.") for p in lib.glob("*.dist-info"))
    platforms = lib / "connector" / "platforms"
    assert not platforms.exists() or not [p.name for p in platforms.iterdir() if p.is_dir()]
    assert not list(lib.glob("grpc*")) and not list(lib.glob("opentelemetry*")) and not (lib / "bin").exists()
    assert not (lib / "emulator").exists()


def test_the_entry_script_is_python_3_9_syntax(addon_dir: Path) -> None:
    source = (addon_dir / "bin" / "mdeipstats.py").read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 9))


def _python39() -> list[str]:
    """A real Python 3.9 when this machine has one (pyenv), else this Python told it is 3.9."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(root.glob("versions/3.9*/bin/python3.9")):
        return [str(candidate), "-S"]
    fake = ("import sys, runpy; sys.version_info = (3, 9, 18, 'final', 0); "
            "runpy.run_path(sys.argv[1], run_name='__main__')")
    return [sys.executable, "-S", "-c", fake]


def test_on_an_older_splunk_python_the_search_fails_with_a_clear_message(addon_dir: Path) -> None:
    script = addon_dir / "bin" / "mdeipstats.py"
    getinfo = b'{"action":"getinfo","preview":false,"searchinfo":{"args":["field=dest_ip"]}}'
    request = f"chunked 1.0,{len(getinfo)},0\n".encode() + getinfo
    done = subprocess.run([*_python39(), str(script)], input=request, capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    header, _, body = done.stdout.partition(b"\n")
    assert header.startswith(b"chunked 1.0,")
    assert b"needs Splunk Enterprise 10.2+" in body and b"Python 3.13" in body
    assert b"SyntaxError" not in done.stderr


@pytest.mark.parametrize("name", ["macros.conf", "savedsearches.conf", "searchbnf.conf"])
def test_samples_ship_in_default(addon_dir: Path, name: str) -> None:
    assert (addon_dir / "default" / name).is_file()


def test_the_saved_search_finds_unseen_destinations_over_cim_network_traffic_and_web(addon_dir: Path) -> None:
    searches = _conf(addon_dir / "default" / "savedsearches.conf")
    stanza = searches["MDE - Destination IPs not seen on any device in 30 days"]
    search = stanza["search"]
    assert "datamodel=Network_Traffic" in search and "datamodel=Web" in search
    assert "`mde_ipstats(dest_ip)`" in search and "`mde_unseen_in_org`" in search
    assert stanza["disabled"] == "1"  # a sample: an administrator enables it
    macros = _conf(addon_dir / "default" / "macros.conf")
    assert "lookback_hours=720" in macros["mde_ipstats(1)"]["definition"]  # 30 days
    assert 'mde_seen_in_org="false"' in macros["mde_unseen_in_org"]["definition"]


def test_the_configuration_page_stores_secrets_encrypted(addon_dir: Path) -> None:
    spec = (addon_dir / "README" / "ta_mde_ipstats_account.conf.spec").read_text(encoding="utf-8")
    assert "client_secret" in spec and "tenant_id" in spec
    handler = (addon_dir / "bin" / "ta_mde_ipstats_rh_account.py").read_text(encoding="utf-8")
    assert "encrypted=True" in handler.replace(" ", "")


def test_searchbnf_gives_the_command_a_category(addon_dir: Path) -> None:
    stanza = _conf(addon_dir / "default" / "searchbnf.conf")["mdeipstats-command"]
    assert stanza["category"] == "fields::add"  # the search assistant's group: commands that add fields
    assert stanza["usage"] == "public" and stanza["syntax"].startswith("mdeipstats field=<field>")


def test_app_manifest_names_the_author_and_the_release_date(addon_dir: Path) -> None:
    import json
    import re

    info = json.loads((addon_dir / "app.manifest").read_text())["info"]
    assert [a["name"] for a in info["author"]] == ["mde-ipstats maintainers"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", info["releaseDate"])


def test_the_command_is_declared_as_ucc_declares_custom_search_commands(addon_dir: Path) -> None:
    """globalConfig's customSearchCommand: UCC wrote commands.conf from it, and its logic file is shipped."""
    import json

    config = json.loads((addon_dir / "appserver" / "static" / "js" / "build" / "globalConfig.json").read_text())
    [command] = config["customSearchCommand"]
    assert (command["commandName"], command["commandType"]) == ("mdeipstats", "streaming")
    assert (addon_dir / "bin" / command["fileName"]).is_file()
    assert _conf(addon_dir / "default" / "commands.conf")["mdeipstats"]["filename"] == "mdeipstats.py"
    assert "distributed=False" in (addon_dir / "bin" / "ta_mde_ipstats" / "search.py").read_text()
