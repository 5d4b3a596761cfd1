#!/usr/bin/env bash
# Build the Cortex XSOAR content pack and its docker build context into DIST_DIR:
#   DIST/mde-ipstats-xsoar-<version>.zip          the pack (pack_metadata, README, the integration
#                                                 unified as prepare-content makes it: script, image and
#                                                 description inside the YAML; the sample playbook)
#   DIST/mde-ipstats-xsoar-docker-<version>.tgz   Dockerfile + the core wheel, for the image the YAML names
#
#   scripts/package-xsoar.sh DIST_DIR
#
# The pack is built by demisto-sdk's prepare-content (PyPI, installed into .venv-xsoar-sdk; it works
# offline) in a throw-away content-repository layout, then checked: the zip is re-read with a real
# YAML parser and compared with what the repository declares. The core wheel is taken from DIST_DIR
# (package.sh builds it first) or built here. Fails loudly on any error.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/package-common.sh"

pack="$repo/connector/platforms/xsoar"
sdk_venv="${MDE_XSOAR_SDK_VENV:-$repo/.venv-xsoar-sdk}"
dist="$(pkg_dist "${1:-}")"
py="$(pkg_python)"
version="$(pkg_version)"
zip_out="$dist/mde-ipstats-xsoar-$version.zip"
docker_out="$dist/mde-ipstats-xsoar-docker-$version.tgz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "Generated files are current (integration YAML and README, logo, playbook)"
for generator in "$pack/packtools/integration_yml.py" "$pack/packtools/integration_readme.py" \
        "$pack/packtools/logo.py" "$repo/playbooks/xsoar/generate_playbook.py"; do
    "$py" "$generator" --check || die "run ${generator#"$repo"/} --write and commit"
done

step "demisto-sdk in $sdk_venv"
if ! "$sdk_venv/bin/python" -c 'import demisto_sdk' >/dev/null 2>&1; then
    uv="$(command -v uv || true)"
    [[ -n "$uv" ]] || { [[ -x "$repo/.venv-soar/bin/uv" ]] && uv="$repo/.venv-soar/bin/uv"; }
    python311="$(command -v python3.11 || true)"
    [[ -n "$python311" ]] || die "python3.11 not found (demisto-sdk's Python)"
    if [[ -n "$uv" ]]; then
        [[ -x "$sdk_venv/bin/python" ]] || "$uv" venv -q -p "$python311" "$sdk_venv" >&2
        "$uv" pip install -q -p "$sdk_venv/bin/python" demisto-sdk >&2
    else
        [[ -x "$sdk_venv/bin/python" ]] || "$python311" -m venv "$sdk_venv"
        "$sdk_venv/bin/pip" install -q demisto-sdk >&2
    fi
fi
export DEMISTO_SDK_SKIP_VERSION_CHECK=1 DEMISTO_SDK_IGNORE_CONTENT_WARNING=1
sdk_py="$sdk_venv/bin/python"

step "Pack in a content-repository layout (what demisto-sdk expects)"
content="$work/content"
target="$content/Packs/MDEIPStatistics"
mkdir -p "$target/Playbooks"
cp -R "$pack/." "$target/"
rm -rf "$target/packtools" "$target/docker"
find "$target" -name '__pycache__' -prune -exec rm -rf {} +
cp "$repo/playbooks/xsoar/MDE_IP_Prevalence_Enrichment.yml" "$repo/playbooks/xsoar/MDE_IP_Prevalence_Enrichment_README.md" \
    "$target/Playbooks/"
git -C "$content" init -q
git -C "$content" checkout -q -b master
git -C "$content" add -A
git -C "$content" -c user.name=package-xsoar -c user.email=package-xsoar@localhost commit -q -m pack
export DEMISTO_SDK_CONTENT_PATH="$content"

step "demisto-sdk validate (every path-based check that runs offline)"
# The SDK reads its approved categories, use cases, tags and policies from Config/ (else from GitHub).
"$py" - "$target/pack_metadata.json" "$content/Config" <<'EOF'
import json, pathlib, sys
metadata = json.loads(pathlib.Path(sys.argv[1]).read_text())
config = pathlib.Path(sys.argv[2])
config.mkdir()
files = {"approved_categories.json": {"approved_list": metadata["categories"]},
         "approved_usecases.json": {"approved_list": metadata["useCases"]},
         "approved_tags.json": {"approved_list": {"common": metadata["tags"], "xsoar": [], "marketplacev2": [],
                                                  "xpanse": []}},
         "compliant_policies.json": {"policies": []}}
for name, value in files.items():
    (config / name).write_text(json.dumps(value))
EOF
git -C "$content" add -A
git -C "$content" -c user.name=package-xsoar -c user.email=package-xsoar@localhost commit -q -m config
validators="$("$sdk_py" -c 'import demisto_sdk, pathlib; print(pathlib.Path(demisto_sdk.__file__).parent)')"
validators="$validators/commands/validate/validators"
# Left out, because they cannot run offline: the content graph (GR, and checks flagged graph or
# all-files), git history (RN, BC, PA114), Docker Hub (DO) and GitHub (BA112).
needs_more="$(grep -rlE 'graph: ClassVar\[bool\] = True|graph = True|expected_execution_mode.*ALL_FILES' \
    "$validators" | grep -oE '[A-Z]{2}[0-9]{3}' | sort -u | paste -sd'|' -)"
selected="$(find "$validators" -name '[A-Z][A-Z][0-9][0-9][0-9]_*.py' -printf '%f\n' | cut -c1-5 \
    | grep -vE '^(GR|RN|BC|DO)' | grep -vE "^(${needs_more}|BA112|PA114)$" | sort -u \
    | sed 's/.*/"&"/' | paste -sd, -)"
printf 'ignorable_errors = ["RM116"]\n[Custom_Categories]\nselect = []\nwarning = []\n' >"$work/validate.toml"
printf '[path_based_validations]\nselect = [%s]\nwarning = []\n' "$selected" >>"$work/validate.toml"
(cd "$content" && "$sdk_venv/bin/demisto-sdk" validate -i Packs/MDEIPStatistics --config-path "$work/validate.toml" \
    >"$work/validate.log" 2>&1) \
    || { grep -E '\[[A-Z]{2}[0-9]{3}\]|Error' "$work/validate.log" >&2; die "demisto-sdk validate failed"; }
printf 'demisto-sdk validate: %s checks, all passed\n' "$(tr ',' '\n' <<<"$selected" | wc -l)" >&2

step "demisto-sdk prepare-content (unified integration, pack zip)"
(cd "$content" && "$sdk_venv/bin/demisto-sdk" prepare-content -i "$target" -o "$work/out" >"$work/sdk.log" 2>&1) \
    || { tail -n 40 "$work/sdk.log" >&2; die "demisto-sdk prepare-content failed"; }
built="$(ls "$work"/out/*.zip 2>/dev/null || ls "$work"/out*.zip)"
[[ -f "$built" ]] || die "prepare-content wrote no zip"
cp "$built" "$zip_out"

step "Checking the pack zip (re-read with a YAML 1.2 parser, as demisto-sdk writes it)"
"$sdk_py" - "$zip_out" "$repo" "$version" <<'EOF' >&2
import ast, json, sys, zipfile
from ruamel.yaml import YAML  # YAML 1.2, as demisto-sdk writes it ("yes" stays a string)

yaml = YAML(typ="safe", pure=True)

path, repo, version = sys.argv[1:4]
sys.path.insert(0, f"{repo}/connector/platforms/xsoar/packtools")
sys.path.insert(0, f"{repo}/playbooks/xsoar")
import generate_playbook
import integration_yml

with zipfile.ZipFile(path) as pack:
    names = pack.namelist()
    read = lambda suffix: pack.read(next(n for n in names if n.endswith(suffix)))
    integration = yaml.load(read("Integrations/integration-MDEIPStatistics.yml"))
    playbook = yaml.load(read("Playbooks/playbook-MDE_IP_Prevalence_Enrichment.yml"))
    metadata = json.loads(read("pack_metadata.json"))
problems = []
declared = integration_yml.integration()
script = integration["script"]["script"]
try:
    ast.parse(script)
except SyntaxError as exc:
    problems.append(f"the unified script does not parse: {exc}")
if "def main()" not in script or "connector.run(" not in script:
    problems.append("the unified script is not the integration")
if "class TokenProvider" in script or "class MdeClient" in script:
    problems.append("the core is inlined in the script (it belongs in the docker image)")
if not str(integration.get("image", "")).startswith("data:image/png;base64,"):
    problems.append("no embedded image")
if "Ip.Read.All" not in str(integration.get("detaileddescription", "")):
    problems.append("no embedded description")
if integration["script"]["dockerimage"] != f"mde-ipstats/xsoar:{version}":
    problems.append(f"docker image {integration['script']['dockerimage']}")
if integration["script"]["commands"] != declared["script"]["commands"]:
    problems.append("commands differ from the generated declaration")
if [p["name"] for p in integration["configuration"]] != [p["name"] for p in declared["configuration"]]:
    problems.append("parameters differ from the generated declaration")
if playbook["tasks"] != generate_playbook.playbook()["tasks"]:
    problems.append("the playbook's tasks differ from the committed playbook")
if any("packtools" in n or "emulator" in n or n.endswith(".pyc") for n in names):
    problems.append("build tools, the emulator or bytecode in the pack")
if metadata.get("currentVersion") != "1.0.0" or any("ReleaseNotes/" in n for n in names):
    problems.append(f"a first release is pack version 1.0.0 without release notes, not {metadata.get('currentVersion')}")
if metadata.get("support") != "community" or set(metadata.get("marketplaces", [])) != {"xsoar", "marketplacev2", "platform"}:
    problems.append(f"support {metadata.get('support')!r}, marketplaces {metadata.get('marketplaces')}")
if problems:
    sys.exit("pack check failed:\n  " + "\n  ".join(problems))
print(f"pack {path.rsplit('/', 1)[-1]}: {len(names)} files, integration {integration['commonfields']['id']!r} "
      f"({len(script)} chars of script), playbook {playbook['id']!r}, "
      f"commands {[c['name'] for c in integration['script']['commands']]}")
EOF

step "Docker build context (demisto/dockerfiles shape: Dockerfile, requirements.txt, verify.py, build.conf)"
wheel="$(pkg_core_wheel "$dist")"
image_dir="$work/mde-ipstats-xsoar-docker-$version"
mkdir -p "$image_dir/wheels"
cp "$pack/docker/Dockerfile" "$pack/docker/verify.py" "$pack/docker/build.conf" "$image_dir/"
cp "$wheel" "$image_dir/wheels/"
printf '# The connector core, from wheels/ beside this file; its dependencies from PyPI.\nmde-ipstats==%s\n' \
    "$version" >"$image_dir/requirements.txt"
grep -q '^FROM demisto/python3:3\.11\.' "$image_dir/Dockerfile" || die "the Dockerfile is not FROM demisto/python3:3.11"
"$py" "$image_dir/verify.py" >&2 || die "verify.py fails against the core"
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
    -czf "$docker_out" "$(basename "$image_dir")"

pkg_done "$zip_out" "$docker_out"
