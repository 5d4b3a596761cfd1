# Sourced by scripts/soar-venv.sh and scripts/siem-venv.sh: what making their Python 3.13 venvs shares.
# Each venv records a stamp of what it was built from; an unchanged stamp whose imports still work
# means there is nothing to do.

# venv313_stamp FILE...: a digest of what a venv is built from (a missing file counts as empty).
venv313_stamp() {
    (cat "$@" 2>/dev/null || true) | sha256sum | cut -d' ' -f1
}

# venv313_reuse VENV STAMP IMPORTS: when VENV was built from STAMP and IMPORTS run in it, print its
# python (the scripts' last line) and end the calling script: there is nothing to do.
venv313_reuse() {
    if [[ -x "$1/bin/python" && -f "$1/.mde-stamp" && "$(cat "$1/.mde-stamp")" == "$2" ]] \
            && "$1/bin/python" -c "$3" >/dev/null 2>&1; then
        printf '%s: up to date: %s\n' "$(basename "$0" .sh)" "$1" >&2
        printf '%s\n' "$1/bin/python"
        exit 0
    fi
}

# venv313_fresh VENV PYTHON313: (re)create VENV with PYTHON313 unless it already is a 3.13 venv.
venv313_fresh() {
    if [[ ! -x "$1/bin/python" ]] || ! "$1/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
        printf '%s: creating %s\n' "$(basename "$0" .sh)" "$1" >&2
        rm -rf "$1"
        "$2" -m venv "$1"
    fi
}

# venv313_done VENV STAMP: record the stamp and print the venv's python (the scripts' last line).
venv313_done() {
    printf '%s\n' "$2" > "$1/.mde-stamp"
    printf '%s\n' "$1/bin/python"
}
