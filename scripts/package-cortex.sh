#!/usr/bin/env bash
# Build the TheHive Cortex analyzer archive:
#   scripts/package-cortex.sh DIST_DIR
# writes DIST_DIR/mde-ipstats-cortex-<version>.tar.gz, which unpacks to
#   analyzers/MDE_IPStatistics/            definition JSON, program, requirements.txt, README.md,
#                                          assets/{logo.svg,logo.png,long_report.png}, Dockerfile,
#                                          wheels/<core wheel>
#   analyzers/mde-ipstats-docker-catalog.json   the definition with dockerImage, for the docker runner
#   thehive-templates/MDE_IPStatistics_1_0/{short,long}.html
# The core wheel is DIST_DIR's mde_ipstats-<version>-*.whl when there is one (package.sh builds it
# first), otherwise it is built here. Prints the archive's path on the last line.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/package-common.sh"

src="$repo/connector/platforms/cortex"
name="MDE_IPStatistics"
docker_image="mde-ipstats/mde_ipstatistics"

dist="$(pkg_dist "${1:-}")"
py="$(pkg_python)"
version="$(pkg_version)"
flavor_version="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$src/$name.json")"

"$py" -m connector.platforms.cortex.flavor --check \
    || die "$src/$name.json is stale: run .venv/bin/python -m connector.platforms.cortex.flavor and commit it"

wheel="$(pkg_core_wheel "$dist")"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
analyzer="$stage/analyzers/$name"
templates="$stage/thehive-templates/${name}_${flavor_version//./_}"
mkdir -p "$analyzer/assets" "$analyzer/wheels" "$templates"

install -m 0644 "$src/$name.json" "$src/README.md" "$src/Dockerfile" "$analyzer/"
install -m 0755 "$src/mde_ipstatistics.py" "$analyzer/"
install -m 0644 "$src/assets/logo.svg" "$src/assets/logo.png" "$src/assets/long_report.png" "$analyzer/assets/"
install -m 0644 "$wheel" "$analyzer/wheels/"
install -m 0644 "$src/thehive-templates/${name}_${flavor_version//./_}"/{short,long}.html "$templates/"

# pip resolves --find-links relative to this file, so the shipped wheel is found wherever pip runs from.
cat > "$analyzer/requirements.txt" <<EOF
# The connector core, from the wheel shipped in wheels/ beside this file; its own dependencies from PyPI.
--find-links wheels
mde-ipstats==$version
cortexutils>=2.2.1,<3
EOF
chmod 0644 "$analyzer/requirements.txt"

"$py" - "$src/$name.json" "$docker_image" > "$stage/analyzers/mde-ipstats-docker-catalog.json" <<'EOF'
import json, sys
definition = json.load(open(sys.argv[1], encoding="utf-8"))
definition["dockerImage"] = f"{sys.argv[2]}:{definition['version']}"
print(json.dumps([definition], indent=2, ensure_ascii=False))
EOF

archive="$dist/mde-ipstats-cortex-$version.tar.gz"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
    -czf "$archive.partial" analyzers thehive-templates
mv "$archive.partial" "$archive"
pkg_done "$archive"
