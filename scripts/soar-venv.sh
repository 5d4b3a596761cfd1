#!/usr/bin/env bash
# Create (or refresh) .venv-soar: Python 3.13 with splunk-soar-sdk 7.x, the core from this repo,
# the emulator and the test tools. Idempotent and non-interactive; safe to run on every test run.
#
#   scripts/soar-venv.sh            # prints the venv's python path on the last line
#   MDE_SOAR_VENV=/path scripts/soar-venv.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MDE_SOAR_VENV:-$repo/.venv-soar}"
app_dir="$repo/connector/platforms/splunk_soar"

log() { printf 'soar-venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

py313="$("$repo/scripts/python313.sh")"
# shellcheck source=scripts/venv313.sh
. "$repo/scripts/venv313.sh"
log "using $py313 ($("$py313" --version 2>&1))"

# What the venv is built from: when none of it changed, there is nothing to do.
stamp="$(venv313_stamp "${BASH_SOURCE[0]}" "$repo/pyproject.toml" "$repo/emulator/pyproject.toml" \
    "$app_dir/pyproject.toml")"
venv313_reuse "$venv" "$stamp" 'import soar_sdk, connector, emulator, pytest'

venv313_fresh "$venv" "$py313"

pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
"${pip[@]}" install --quiet --upgrade pip >&2
# The SDK pin keeps pip from ever falling back to the 2.x line; uv is what the SDK's tooling
# (uv.lock of the app project) is built on.
"${pip[@]}" install --quiet \
    'splunk-soar-sdk>=7,<8' 'uv>=0.5' 'pytest>=8' 'pytest-timeout>=2.3' \
    -e "$repo" -e "$repo/emulator" >&2
"$venv/bin/python" - <<'EOF' >&2
import importlib.metadata as md, sys
v = md.version("splunk-soar-sdk")
assert v.split(".")[0] == "7", f"splunk-soar-sdk {v} is not 7.x"
print(f"soar-venv: python {sys.version.split()[0]}, splunk-soar-sdk {v}")
EOF
venv313_done "$venv" "$stamp"
