#!/usr/bin/env bash
# Print the path of a working Python 3.13 (what splunk-soar-sdk 7.x and Splunk's own runtime for the
# add-on need): MDE_PYTHON313, else python3.13 on PATH when it really runs (a pyenv shim may exist
# without the version selected), else pyenv's install directory, else the usual system paths.
# Used by scripts/soar-venv.sh and scripts/siem-venv.sh.
set -euo pipefail

die() { printf 'python313.sh: ERROR: %s\n' "$*" >&2; exit 1; }
is313() { "$1" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; }

if [[ -n "${MDE_PYTHON313:-}" ]]; then
    is313 "$MDE_PYTHON313" || die "MDE_PYTHON313=$MDE_PYTHON313 is not a working Python 3.13"
    printf '%s\n' "$MDE_PYTHON313"; exit 0
fi
if candidate="$(command -v python3.13 2>/dev/null)" && is313 "$candidate"; then
    printf '%s\n' "$candidate"; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.13*/bin/python3.13; do
        if [[ -x "$candidate" ]] && is313 "$candidate"; then printf '%s\n' "$candidate"; exit 0; fi
    done
fi
for candidate in /usr/local/bin/python3.13 /usr/bin/python3.13; do
    if [[ -x "$candidate" ]] && is313 "$candidate"; then printf '%s\n' "$candidate"; exit 0; fi
done
die "no working python3.13 found (splunk-soar-sdk 7.x and the Splunk add-on need Python 3.13; on 3.11 pip
would silently install the incompatible splunk-soar-sdk 2.x). Install Python 3.13 or set MDE_PYTHON313=/path/to/python3.13"
