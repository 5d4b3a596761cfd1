#!/usr/bin/env bash
# Build the Microsoft Sentinel package, a zip-deploy Azure Function App (Python 3.11, Linux x86_64):
#   scripts/package-sentinel.sh DIST_DIR
# writes DIST_DIR/mde-ipstats-sentinel-<version>.zip, whose root is the Function App:
#   function_app.py, host.json, requirements.txt, .funcignore   the v2-model app (connector/platforms/sentinel)
#   .python_packages/lib/site-packages/                         the core, its dependencies and azure-functions,
#                                                               as manylinux wheels for CPython 3.11, plus the
#                                                               adapter (connector/platforms/sentinel)
#   templates/azuredeploy.json, templates/function-app/azuredeploy.json   the playbook and Function App templates
# Deploy it with remote build off (the app settings of the Function App template say so):
#   az functionapp deployment source config-zip -g RG -n APP --src mde-ipstats-sentinel-<version>.zip
# The core wheel is DIST_DIR's mde_ipstats-<version>-*.whl when there is one (package.sh builds it first),
# otherwise it is built here. Prints the zip's path on stdout.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/package-common.sh"

src="$repo/connector/platforms/sentinel"
python_version="3.11"
platform="manylinux2014_x86_64"

dist="$(pkg_dist "${1:-}")"
py="$(pkg_python)"
version="$(pkg_version)"
wheel="$(pkg_core_wheel "$dist")"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
site="$stage/.python_packages/lib/site-packages"
mkdir -p "$site" "$stage/templates/function-app"

# The Functions host runs the worker's Python 3.11 on Linux x86_64: binary wheels for exactly that, never sdists.
"$py" -m pip install --quiet --disable-pip-version-check --no-input --no-compile \
    --platform "$platform" --python-version "$python_version" --implementation cp --only-binary=:all: \
    --target "$site" "$wheel" 'azure-functions>=1.24,<2' >&2
rm -rf "$site/bin"
# The adapter: the core wheel leaves platforms out, the Function needs this one.
mkdir -p "$site/connector/platforms/sentinel"
install -m 0644 "$src"/{__init__,appsettings,comment,enrich,request,function_app}.py "$site/connector/platforms/sentinel/"

install -m 0644 "$src/function_app.py" "$src/host.json" "$src/.funcignore" "$stage/"
install -m 0644 "$repo/playbooks/sentinel/azuredeploy.json" "$stage/templates/"
install -m 0644 "$repo/playbooks/sentinel/function-app/azuredeploy.json" "$stage/templates/function-app/"

# requirements.txt: exactly what .python_packages holds (for the record, and for tools that read it);
# mde-ipstats itself is not on PyPI, it ships inside.
"$py" - "$site" > "$stage/requirements.txt" <<'EOF'
import sys
from importlib.metadata import distributions
site = sys.argv[1]
found = sorted({(d.metadata["Name"], d.version) for d in distributions(path=[site])}, key=lambda p: p[0].lower())
print("# Installed in .python_packages/lib/site-packages (CPython 3.11, Linux x86_64) by scripts/package-sentinel.sh.")
print("# Deploy with remote build off (SCM_DO_BUILD_DURING_DEPLOYMENT=false): mde-ipstats is not on PyPI,")
print("# its wheel is installed in .python_packages with everything below.")
for name, version in found:
    if name.lower() not in ("mde-ipstats", "mde_ipstats"):
        print(f"{name}=={version}")
EOF

# No source of the emulator or the tests, no byte code: what the host runs is what is listed here.
find "$stage" -name '__pycache__' -prune -exec rm -rf {} +
if find "$site" -maxdepth 1 -name 'emulator*' | grep -q .; then die "the emulator must not be shipped"; fi

archive="$dist/mde-ipstats-sentinel-$version.zip"
"$py" - "$stage" "$archive.partial" <<'EOF'
import os, sys, zipfile
root, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            info = zipfile.ZipInfo(os.path.relpath(path, root), date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as handle:
                archive.writestr(info, handle.read())
EOF
mv "$archive.partial" "$archive"
pkg_done "$archive"
