#!/usr/bin/env bash
# Make sure Debian's `chromium` is installed (the browser the Splunk SOAR view test renders in) and
# print its path on the last line. Idempotent and non-interactive: when chromium is already on PATH
# (or MDE_CHROMIUM names a working binary) nothing is installed.
#
#   scripts/chromium.sh             # prints e.g. /usr/bin/chromium
#
# Installing needs root (or passwordless sudo) and the Debian package archive; the view test FAILS,
# it does not skip, when no browser is found, so a CI run cannot pass without having looked.
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

works() { "$1" --version >/dev/null 2>&1; }

if [[ -n "${MDE_CHROMIUM:-}" ]]; then
    works "$MDE_CHROMIUM" || die "MDE_CHROMIUM=$MDE_CHROMIUM does not run"
    printf '%s\n' "$MDE_CHROMIUM"; exit 0
fi
if found="$(command -v chromium 2>/dev/null)" && works "$found"; then
    log "found $("$found" --version 2>/dev/null)"
    printf '%s\n' "$found"; exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "chromium is not installed and this is not a Debian-like system (no apt-get); install Chromium and set MDE_CHROMIUM=/path/to/chromium"
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
        || die "installing chromium needs root: run 'sudo apt-get install chromium', or set MDE_CHROMIUM"
    sudo=(sudo -n)
fi

log "installing Debian's chromium package (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
found="$(command -v chromium 2>/dev/null)" || die "apt-get installed chromium but it is not on PATH"
works "$found" || die "$found does not run"
log "installed $("$found" --version 2>/dev/null)"
printf '%s\n' "$found"
