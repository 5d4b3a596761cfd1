#!/usr/bin/env bash
# The project's commands. On a fresh machine each one sets up what it needs first.
#   ./run.sh demo    set up .venv and run the connector end to end against the built-in emulator
#   ./run.sh test    set up everything (venvs, redis-server, chromium) and run every check
#   ./run.sh test --long   the long profile: the hostile-input properties at 30,000 examples (not in ./run.sh test)
#   ./run.sh setup   only set up .venv
#   ./run.sh bench   the alert-storm benchmark (bench/alert_storm.py; pass its options after 'bench')
#   ./run.sh bench cold   the cold action cost: a fresh process's lookup against two floors (bare requests; requests + pydantic)
#   ./run.sh bench soar   the connector's own import in a Splunk SOAR action process, after the SDK's
#   ./run.sh bench outage   a steady storm through a five-minute Defender outage, breaker on and off (bench/outage.py)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

log() { printf '\n>>> %s\n' "$*" >&2; }

find_python() {
  for candidate in "${PYTHON:-}" python3 python3.11 python3.12 python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

setup() {
  local stamp=.venv/.installed
  local want
  want=$(cat pyproject.toml emulator/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  log "setting up .venv"
  local python
  python=$(find_python)
  if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./emulator
  echo "$want" > "$stamp"
}

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

run_tests() {
  setup
  log "static checks: ruff, mypy --strict on the core"
  .venv/bin/ruff check .
  .venv/bin/mypy
  log "starting a private redis-server on loopback"
  local redis_url
  redis_url=$(scripts/start-redis.sh start)
  # Stop this run's own instance by its URL, not "the last one started", which a concurrent run may own.
  trap "scripts/start-redis.sh stop '$redis_url' >/dev/null 2>&1 || true" EXIT
  # Debian's chromium, for the tests that check in a real browser what analysts see (the Splunk SOAR view,
  # the TheHive templates); installed when missing.
  scripts/chromium.sh >/dev/null
  log "core, emulator, reliability, storm, XSOAR and Cortex tests (Python $(.venv/bin/python -c 'import platform; print(platform.python_version())'))"
  MDE_TEST_REDIS_URL="$redis_url" .venv/bin/python -m pytest -q
  log "Splunk SOAR app tests (Python 3.13, splunk-soar-sdk)"
  scripts/soar-venv.sh
  .venv-soar/bin/python -m pytest -q -c tests/splunk_soar/pytest.ini tests/splunk_soar
  log "Splunk add-on TA-mde-ipstats (Python 3.13): package, AppInspect (cloud, precert), command tests"
  MDE_TEST_REDIS_URL="$redis_url" scripts/test-splunk-siem.sh
}

run_long_tests() {
  setup
  log "long profile: the hostile-input properties at 10,000 examples each over the parser and 2,500 each through the connector"
  MDE_HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/reliability/test_hostile_input.py
}

case "${1:-}" in
  setup) setup ;;
  demo) setup; shift; exec .venv/bin/mde-ipstats demo "$@" ;;
  test)
    case "${2:-}" in
      "") run_tests ;;
      --long) run_long_tests ;;
      *) echo "unknown option for test: $2 (known: --long)" >&2; exit 2 ;;
    esac ;;
  bench)
    setup; shift
    if [ "${1:-}" = cold ]; then shift; exec .venv/bin/python bench/cold_start.py "$@"; fi
    if [ "${1:-}" = outage ]; then shift; exec .venv/bin/python bench/outage.py "$@"; fi
    if [ "${1:-}" = soar ]; then shift; exec "$(scripts/soar-venv.sh | tail -n 1)" bench/soar_import.py "$@"; fi
    exec .venv/bin/python bench/alert_storm.py "$@" ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
