#!/usr/bin/env bash
# Build the Splunk add-on TA-mde-ipstats (UCC build + package) into DIST_DIR:
#   DIST_DIR/TA-mde-ipstats-<version>.tgz
# Dependencies are bundled in the add-on's lib/, installed by Python 3.13 (the runtime Splunk 10.2+ gives
# the command) so that compiled wheels (pydantic-core, cryptography, rpds-py) match; the core comes from
# this repo's own wheel. Works offline given a wheelhouse (PIP_NO_INDEX=1 PIP_FIND_LINKS=...).
#
#   scripts/package-splunk-siem.sh dist
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/package-common.sh"

project="$repo/connector/platforms/splunk_siem"
dist="$(pkg_dist "${1:-}")"

py="$("$repo/scripts/siem-venv.sh" | tail -n 1)"
[[ -x "$py" ]] || die "scripts/siem-venv.sh did not give a python ($py)"
bin="$(dirname "$py")"

step "globalConfig.json is what manifest.json generates"
(cd "$repo" && "$py" -m connector.platforms.splunk_siem.globalconfig --check) \
    || die "globalConfig.json is stale: python -m connector.platforms.splunk_siem.globalconfig --write"
version="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["meta"]["version"])' "$project/globalConfig.json")"

work="$(mktemp -d "${TMPDIR:-/tmp}/ta-mde-ipstats.XXXXXX")"
trap '[[ -n "${MDE_KEEP_BUILD:-}" ]] || rm -rf "$work"' EXIT

step "Core wheel"
pkg_python >/dev/null
wheel="$(pkg_core_wheel "$dist")"

step "UCC build (Python $("$py" -c 'import platform; print(platform.python_version())'), pip 25.3)"
mkdir -p "$work/project"
cp -r "$project/globalConfig.json" "$project/package" "$work/project/"
find "$work/project" -name __pycache__ -type d -prune -exec rm -rf {} +
printf 'mde-ipstats @ file://%s\n' "$wheel" >> "$work/project/package/lib/requirements.txt"
# --pip-version: pip 26 dropped `pip show --version`, which UCC's build calls (the build then fails
# with a misleading "splunktaucclib not found").
"$bin/ucc-gen" build --source "$work/project/package" --config "$work/project/globalConfig.json" \
    --ta-version "$version" --output "$work/output" --python-binary-name "$py" --pip-version 25.3 \
    >"$work/ucc.log" 2>&1 || { tail -40 "$work/ucc.log" >&2; die "ucc-gen build failed"; }
addon="$work/output/TA-mde-ipstats"

step "Trimming lib/ to what runs in Splunk"
# Console scripts of the bundled packages, the build-time requirement on a temporary wheel path, and the
# other platforms' adapters that ride along in the core's wheel.
rm -rf "$addon/lib/bin"
# UCC's exclude.txt removes a package's own top-level directories, not a namespace several of them share.
rm -rf "$addon/lib/opentelemetry"
cp "$project/package/lib/requirements.txt" "$addon/lib/requirements.txt"
if [[ -d "$addon/lib/connector/platforms" ]]; then
    find "$addon/lib/connector/platforms" -mindepth 1 -maxdepth 1 ! -name '__init__.py' -exec rm -rf {} +
fi
find "$addon" \( -name '*.pyc' -o -name '*.pyo' \) -delete
find "$addon" -name __pycache__ -type d -prune -exec rm -rf {} +
"$py" - "$addon" <<'PYEOF'
import pathlib, sys
addon = pathlib.Path(sys.argv[1])
for needed in ("bin/mdeipstats.py", "default/commands.conf", "lib/splunklib", "lib/connector/actions.py",
               "lib/pydantic_core", "default/restmap.conf"):
    if not (addon / needed).exists():
        sys.exit(f"the built add-on lacks {needed}")
so = [p.name for p in (addon / "lib").rglob("*.so")]
wrong = [n for n in so if "cpython-" in n and "cpython-313-" not in n]
if wrong:
    sys.exit(f"compiled modules not built for CPython 3.13: {wrong}")
if any((addon / "lib").glob("grpc*")) or any((addon / "lib").glob("opentelemetry*")):
    sys.exit("lib/exclude.txt did not remove gRPC / OpenTelemetry")
print(f"add-on tree ok: {len(so)} compiled modules, all cpython-313", file=sys.stderr)
PYEOF

step "UCC package"
mkdir -p "$work/pkg"
"$bin/ucc-gen" package --path "$addon" --output "$work/pkg" >>"$work/ucc.log" 2>&1 \
    || { tail -20 "$work/ucc.log" >&2; die "ucc-gen package failed"; }
rm -f "$dist"/TA-mde-ipstats-*.tgz
mv "$work"/pkg/TA-mde-ipstats-*.tar.gz "$dist/TA-mde-ipstats-$version.tgz"
pkg_done "$dist/TA-mde-ipstats-$version.tgz"
