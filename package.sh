#!/usr/bin/env bash
# Build every shippable artefact into dist/:
#   dist/mde_ipstats-<version>-py3-none-any.whl   the core library (pip install; the CLI mde-ipstats)
#   dist/mde_ipstats-<version>.tar.gz             its source distribution
#   dist/mde-ipstats-splunk-soar-<version>.tgz    the Splunk SOAR app, with every wheel it needs
#                                                 (the core's included, the emulator's not)
#   dist/mde-ipstats-xsoar-<version>.zip          the Cortex XSOAR pack (integration unified) + docker context
#   dist/mde-ipstats-cortex-<version>.tar.gz      the TheHive Cortex analyzer and its report templates
#   dist/TA-mde-ipstats-<version>.tgz             the Splunk Enterprise/Cloud add-on (search command mdeipstats)
#   dist/mde-ipstats-sentinel-<version>.zip       the Microsoft Sentinel Azure Function (zip deploy) + ARM templates
#
#   ./package.sh                       everything
#   ./package.sh splunk-soar cortex    the core and the platforms named (core, splunk-soar, xsoar, cortex, splunk-siem,
#                                      sentinel)
# Fails loudly on any error. Needs Python 3.13 (found by scripts/soar-venv.sh) and the package index.
set -euo pipefail

all_targets=(splunk-soar xsoar cortex splunk-siem sentinel)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
wanted() { local t; for t in "${targets[@]}"; do [[ "$t" == "$1" ]] && return 0; done; return 1; }
for t in "${targets[@]}"; do
    [[ "$t" == core ]] || [[ " ${all_targets[*]} " == *" $t "* ]] \
        || { printf 'package.sh: unknown target %s (known: core %s)\n' "$t" "${all_targets[*]}" >&2; exit 2; }
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
app_dir="$repo/connector/platforms/splunk_soar"
dist="$repo/dist"
started=$SECONDS

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'package.sh: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO (exit $?)"' ERR

step "Python 3.13 environment with splunk-soar-sdk (scripts/soar-venv.sh)"
py="$("$repo/scripts/soar-venv.sh" | tail -n 1)"
[[ -x "$py" ]] || die "scripts/soar-venv.sh did not give a python ($py)"
venv_bin="$(dirname "$py")"
export UV_PYTHON_DOWNLOADS=never UV_PYTHON="$py" UV_NO_PROGRESS=1

mkdir -p "$dist"
rm -f "$dist"/mde_ipstats-*.whl "$dist"/mde_ipstats-*.tar.gz
built=()

step "Core wheel and sdist (python -m build)"
"$py" -m build --sdist --wheel --outdir "$dist" "$repo" >&2
core_wheel="$(ls "$dist"/mde_ipstats-*-py3-none-any.whl)"
core_sdist="$(ls "$dist"/mde_ipstats-*.tar.gz)"
if "$py" -m zipfile -l "$core_wheel" | grep -q 'connector/platforms/'; then
    die "the core wheel contains a platform adapter; check [tool.hatch.build.targets.wheel] exclude"
fi
built+=("$core_wheel" "$core_sdist")

if wanted splunk-soar; then
rm -f "$dist"/mde-ipstats-splunk-soar-*.tgz

step "Splunk SOAR app dependencies (uv.lock)"
if ! (cd "$app_dir" && "$venv_bin/uv" lock --check >&2); then
    printf 'package.sh: uv.lock was out of date with the dependencies; updating it (commit the change)\n' >&2
    (cd "$app_dir" && "$venv_bin/uv" lock >&2)
fi

app_version="$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$app_dir/pyproject.toml")"
app_tgz="$dist/mde-ipstats-splunk-soar-$app_version.tgz"

step "Splunk SOAR app tarball (soarapps package build, through soarapps_wrapper.py)"
(cd "$app_dir" && "$py" soarapps_wrapper.py package build "$app_dir" --output-file "$app_tgz" >&2)

step "Checking the app tarball"
"$py" - "$app_tgz" <<'EOF'
import json, sys, tarfile
path = sys.argv[1]
with tarfile.open(path) as tar:
    names = tar.getnames()
    manifest_name = next(n for n in names if n.count("/") == 1 and n.endswith("/manifest.json"))
    manifest = json.load(tar.extractfile(manifest_name))
actions = {a["identifier"]: a for a in manifest["actions"]}
missing = {"test_connectivity", "get_ip_statistics"} - set(actions)
if missing:
    sys.exit(f"{path}: manifest lacks actions {sorted(missing)}")
paths = {o["data_path"] for o in actions["get_ip_statistics"]["output"]}
needed = {f"action_result.data.*.{f}" for f in
          ("ipAddress", "organizationPrevalence", "orgPrevalence", "orgFirstSeen", "orgLastSeen")}
if needed - paths:
    sys.exit(f"{path}: get_ip_statistics lacks data paths {sorted(needed - paths)}")
wheels = [n for n in names if n.endswith(".whl")]
if not any("/mde_ipstats-" in w for w in wheels):
    sys.exit(f"{path}: the core wheel is missing")
if any("emulator" in n for n in names):
    sys.exit(f"{path}: the emulator must not be shipped")
declared = {w["input_file"] for w in manifest["pip313_dependencies"]["wheel"]}
absent = {d for d in declared if f"{manifest_name.split('/')[0]}/{d}" not in names}
if absent:
    sys.exit(f"{path}: wheels declared but not packed: {sorted(absent)}")
print(f"app {manifest['name']!r} {manifest['app_version']}: actions {sorted(actions)}, {len(wheels)} wheels")
EOF

built+=("$app_tgz")
fi

if wanted xsoar; then
    step "Cortex XSOAR pack (scripts/package-xsoar.sh)"
    rm -f "$dist"/mde-ipstats-xsoar-*.zip
    "$repo/scripts/package-xsoar.sh" "$dist" >&2
    built+=("$(ls "$dist"/mde-ipstats-xsoar-*.zip)")
fi
if wanted cortex; then
    step "TheHive Cortex analyzer archive (scripts/package-cortex.sh)"
    rm -f "$dist"/mde-ipstats-cortex-*.tar.gz
    "$repo/scripts/package-cortex.sh" "$dist" >&2
    built+=("$(ls "$dist"/mde-ipstats-cortex-*.tar.gz)")
fi
if wanted splunk-siem; then
    step "Splunk add-on TA-mde-ipstats (scripts/package-splunk-siem.sh)"
    rm -f "$dist"/TA-mde-ipstats-*.tgz
    "$repo/scripts/package-splunk-siem.sh" "$dist" >&2
    built+=("$(ls "$dist"/TA-mde-ipstats-*.tgz)")
fi

if wanted sentinel; then
    step "Microsoft Sentinel Function App (scripts/package-sentinel.sh)"
    rm -f "$dist"/mde-ipstats-sentinel-*.zip
    "$repo/scripts/package-sentinel.sh" "$dist" >&2
    built+=("$(ls "$dist"/mde-ipstats-sentinel-*.zip)")
fi

step "Done in $((SECONDS - started)) s"
ls -l "${built[@]}"
