#!/usr/bin/env bash
# Create (or reuse) .venv-funcdoctor: azure-functions-doctor, the static checker of Azure Functions Python v2
# apps, kept out of the project's own .venv (its dependencies are not the connector's). Idempotent.
#
#   scripts/funcdoctor-venv.sh      # prints the azure-functions-doctor executable's path on the last line
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MDE_FUNCDOCTOR_VENV:-$repo/.venv-funcdoctor}"
requirement="azure-functions-doctor==0.23.1"
stamp="$(printf '%s\n' "$requirement" | cat - "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"

log() { printf 'funcdoctor-venv: %s\n' "$*" >&2; }

if [[ -x "$venv/bin/azure-functions-doctor" && -f "$venv/.mde-stamp" && "$(cat "$venv/.mde-stamp")" == "$stamp" ]]; then
    printf '%s\n' "$venv/bin/azure-functions-doctor"
    exit 0
fi
python="$("$repo/.venv/bin/python" -c 'import sys; print(sys._base_executable)' 2>/dev/null || command -v python3)"
log "creating $venv with $python"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$requirement" >&2
printf '%s\n' "$stamp" > "$venv/.mde-stamp"
printf '%s\n' "$venv/bin/azure-functions-doctor"
