#!/usr/bin/env bash
# Build the Splunk SOAR app into DIST_DIR with the SDK's own packager (soarapps package build):
#   DIST_DIR/mde-ipstats-splunk-soar-<version>.tgz   app JSON, code, view, logos, README, LICENSE, NOTICE,
#                                                    release_notes/, and every wheel it needs (the core's
#                                                    included, the emulator's not)
#   scripts/package-splunk-soar.sh DIST_DIR
# The SDK's CLI runs through the adapter's tools/soarapps_wrapper.py, which lets the packager build the core (a local
# directory in uv.lock) into the app's wheels; nothing of it is shipped. Needs Python 3.13
# (scripts/soar-venv.sh finds or installs it) and the package index (or a warm wheel cache).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/package-common.sh"

dist="$(pkg_dist "${1:-}")"
app_dir="$repo/connector/platforms/splunk_soar"
py="$("$repo/scripts/soar-venv.sh" | tail -n 1)"
[[ -x "$py" ]] || die "scripts/soar-venv.sh did not give a python ($py)"
venv_bin="$(dirname "$py")"
export UV_PYTHON_DOWNLOADS=never UV_PYTHON="$py" UV_NO_PROGRESS=1

step "Splunk SOAR app dependencies (uv.lock)"
if ! (cd "$app_dir" && "$venv_bin/uv" lock --check >&2); then
    printf '%s: uv.lock was out of date with the dependencies; updating it (commit the change)\n' "$pkg_script" >&2
    (cd "$app_dir" && "$venv_bin/uv" lock >&2)
fi

app_version="$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$app_dir/pyproject.toml")"
app_tgz="$dist/mde-ipstats-splunk-soar-$app_version.tgz"
rm -f "$dist"/mde-ipstats-splunk-soar-*.tgz

step "Splunk SOAR app tarball (soarapps package build)"
(cd "$app_dir" && "$py" "$app_dir/tools/soarapps_wrapper.py" package build "$app_dir" --output-file "$app_tgz" >&2)

step "Checking the app tarball"
"$py" - "$app_tgz" <<'PYEOF' >&2
import json, sys, tarfile
path = sys.argv[1]
with tarfile.open(path) as tar:
    names = tar.getnames()
    manifest_name = next(n for n in names if n.count("/") == 1 and n.endswith("/manifest.json"))
    manifest = json.load(tar.extractfile(manifest_name))
top = manifest_name.split("/")[0]
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
if any("emulator" in n or "soarapps_wrapper" in n for n in names):
    sys.exit(f"{path}: the emulator or a build tool must not be shipped")
for needed_file in ("LICENSE", "NOTICE", "README.md", "release_notes/unreleased.md"):
    if f"{top}/{needed_file}" not in names:
        sys.exit(f"{path}: {needed_file} is missing")
declared = {w["input_file"] for w in manifest["pip313_dependencies"]["wheel"]}
absent = {d for d in declared if f"{top}/{d}" not in names}
if absent:
    sys.exit(f"{path}: wheels declared but not packed: {sorted(absent)}")
print(f"app {manifest['name']!r} {manifest['app_version']}: actions {sorted(actions)}, {len(wheels)} wheels")
PYEOF
pkg_done "$app_tgz"
