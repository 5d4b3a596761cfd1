#!/usr/bin/env bash
# Create (or refresh) .venv-siem: Python 3.13 with splunk-sdk 3.x (its searchcommands are what the add-on
# ships), splunk-add-on-ucc-framework (builds the add-on), splunk-appinspect (checks it), pytest, the core
# from this repo and the emulator. Idempotent and non-interactive; safe to run on every test run.
#
#   scripts/siem-venv.sh            # prints the venv's python path on the last line
#   MDE_SIEM_VENV=/path scripts/siem-venv.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MDE_SIEM_VENV:-$repo/.venv-siem}"
addon_dir="$repo/connector/platforms/splunk_siem"

log() { printf 'siem-venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# splunk-appinspect's python-magic loads libmagic at import time.
ensure_libmagic() {
    if ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1'; then return; fi
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    log "installing libmagic1 (needed by splunk-appinspect)"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libmagic1 >/dev/null
}

py313="$("$repo/scripts/python313.sh")"
# shellcheck source=scripts/venv313.sh
. "$repo/scripts/venv313.sh"
log "using $py313 ($("$py313" --version 2>&1))"
ensure_libmagic

stamp="$(venv313_stamp "${BASH_SOURCE[0]}" "$repo/pyproject.toml" "$repo/emulator/pyproject.toml" \
    "$addon_dir/package/lib/requirements.txt")"
venv313_reuse "$venv" "$stamp" \
    'import splunklib, splunk_add_on_ucc_framework, splunk_appinspect, connector, emulator, pytest, build'

venv313_fresh "$venv" "$py313"

pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
# pip 25.3: UCC's build calls `pip show --version`, an option pip 26 removed (see the add-on README).
"${pip[@]}" install --quiet 'pip==25.3' >&2
"${pip[@]}" install --quiet \
    'splunk-sdk>=3,<4' 'splunk-add-on-ucc-framework>=6.1,<7' 'splunk-appinspect>=4.3,<5' \
    'pytest>=8' 'pytest-timeout>=2.3' 'build>=1.2' \
    -e "$repo" -e "$repo/emulator" >&2
"$venv/bin/python" - <<'PYEOF' >&2
import importlib.metadata as md, sys
versions = {n: md.version(n) for n in ("splunk-sdk", "splunk-add-on-ucc-framework", "splunk-appinspect")}
assert versions["splunk-sdk"].split(".")[0] == "3", versions
print(f"siem-venv: python {sys.version.split()[0]}, " + ", ".join(f"{k} {v}" for k, v in versions.items()))
PYEOF
venv313_done "$venv" "$stamp"
