#!/usr/bin/env bash
# Build the core library into DIST_DIR: its wheel (no platform adapter inside) and its source distribution.
#   scripts/package-core.sh DIST_DIR
# Rebuilding gives byte-identical files (hatchling's reproducible builds).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/package-common.sh"

dist="$(pkg_dist "${1:-}")"
py="$(pkg_python)"
version="$(pkg_version)"
rm -f "$dist"/mde_ipstats-*.whl "$dist"/mde_ipstats-*.tar.gz
"$py" -m build --sdist --wheel --outdir "$dist" "$repo" >&2
wheel="$dist/mde_ipstats-$version-py3-none-any.whl"
sdist="$dist/mde_ipstats-$version.tar.gz"
[[ -f "$wheel" && -f "$sdist" ]] || die "python -m build did not write $wheel and $sdist"
if "$py" -m zipfile -l "$wheel" | grep -q 'connector/platforms/'; then
    die "the core wheel contains a platform adapter; check [tool.hatch.build.targets.wheel] exclude"
fi
pkg_done "$wheel" "$sdist"
