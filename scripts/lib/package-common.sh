# Sourced by package.sh and every scripts/package-*.sh: what building a package shares (messages, the
# failure trap, the dist directory, the project's .venv and version, the core wheel). A script that
# sources it gets $repo, and on any failing command a message naming the script and the line.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pkg_script="$(basename "$0")"
pkg_started=$SECONDS

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$pkg_script" "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO (exit $?)"' ERR

# pkg_dist DIR: DIR made if missing, as an absolute path.
pkg_dist() {
    [[ -n "${1:-}" ]] || die "usage: $pkg_script DIST_DIR"
    mkdir -p "$1" && (cd "$1" && pwd)
}

# pkg_python: the project's .venv python, set up (./run.sh setup, idempotent) when missing or stale.
pkg_python() {
    "$repo/run.sh" setup >&2 || die "./run.sh setup failed"
    printf '%s\n' "$repo/.venv/bin/python"
}

# pkg_version: the release version, manifest.json's (the core's pyproject and every package agree with it).
pkg_version() {
    "$repo/.venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$repo/manifest.json"
}

# pkg_core_wheel DIST: the core wheel of this version in DIST, built there (reproducibly, by hatchling)
# when package.sh has not built it first.
pkg_core_wheel() {
    local version wheels
    version="$(pkg_version)"
    shopt -s nullglob
    wheels=("$1"/mde_ipstats-"$version"-*.whl)
    if [[ ${#wheels[@]} -eq 0 ]]; then
        printf '%s: building the core wheel into %s\n' "$pkg_script" "$1" >&2
        "$repo/.venv/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps "$repo" -w "$1" >&2
        wheels=("$1"/mde_ipstats-"$version"-*.whl)
    fi
    shopt -u nullglob
    [[ ${#wheels[@]} -eq 1 ]] || die "expected one core wheel mde_ipstats-$version-*.whl in $1, found ${#wheels[@]}"
    printf '%s\n' "${wheels[0]}"
}

# pkg_done ARTEFACT...: the closing line on stderr, then each artefact's path on stdout (what package.sh reads).
pkg_done() {
    step "$pkg_script: done in $((SECONDS - pkg_started)) s"
    printf '%s\n' "$@"
}
