#!/usr/bin/env bash
# The Splunk add-on TA-mde-ipstats, end to end: set up .venv-siem (Python 3.13), package the add-on once,
# then, side by side, AppInspect (precert mode, cloud tag: 0 failures, 0 errors, 0 future failures, and
# every warning explained in the add-on's README) and the tests, which drive the packaged command as
# splunkd does against the emulator.
#
#   scripts/test-splunk-siem.sh [pytest args...]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=$SECONDS
step() { printf '\n==> %s\n' "$*" >&2; }

py="$("$repo/scripts/siem-venv.sh" | tail -n 1)"
bin="$(dirname "$py")"
work="$(mktemp -d "${TMPDIR:-/tmp}/test-splunk-siem.XXXXXX")"
ai_pid=""
cleanup() {
    if [[ -n "$ai_pid" ]] && kill -0 "$ai_pid" 2>/dev/null; then kill "$ai_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A warm run reuses the add-on built from identical inputs (the core's sources, manifest.json, the UCC
# project, the packaging script, the venv): MDE_SIEM_REBUILD=1 forces a fresh build.
cache="$(dirname "$bin")/addon-cache"
inputs_hash="$(cd "$repo" && find connector manifest.json pyproject.toml scripts/package-splunk-siem.sh \
        "$(dirname "$bin")/.mde-stamp" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
cached="$(ls "$cache/$inputs_hash"/TA-mde-ipstats-*.tgz 2>/dev/null | head -n 1 || true)"
if [[ -n "$cached" && -z "${MDE_SIEM_REBUILD:-}" ]]; then
    step "Reusing the add-on built from the same inputs ($cached)"
    tgz="$cached"
else
    step "Packaging the add-on (scripts/package-splunk-siem.sh)"
    tgz="$("$repo/scripts/package-splunk-siem.sh" "$work/dist" | tail -n 1)"
    rm -rf "$cache" && mkdir -p "$cache/$inputs_hash" && cp "$tgz" "$cache/$inputs_hash/"
fi
packaged=$SECONDS

step "AppInspect (background) and the add-on's tests"
# --skip-trusted-libraries-update: offline and deterministic (the update needs splunk.com; without
# network it fails anyway and AppInspect goes on with the list it ships).
"$bin/splunk-appinspect" inspect "$tgz" --mode precert --included-tags cloud --skip-trusted-libraries-update \
    --data-format json --output-file "$work/appinspect.json" >"$work/appinspect.log" 2>&1 &
ai_pid=$!
tests_rc=0
(cd "$repo" && MDE_SIEM_PACKAGE="$tgz" "$py" -m pytest -q -c tests/splunk_siem/pytest.ini tests/splunk_siem "$@") \
    || tests_rc=$?
tested=$SECONDS
ai_rc=0
wait "$ai_pid" || ai_rc=$?
ai_pid=""

step "AppInspect verdict"
verdict_rc=0
"$py" - "$work/appinspect.json" "$repo/connector/platforms/splunk_siem/README.md" "$ai_rc" <<'PYEOF' || verdict_rc=$?
import json, pathlib, sys
report_path, readme_path, exit_code = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
if not report_path.exists():
    sys.exit(f"AppInspect wrote no report (exit {exit_code})")
report = json.loads(report_path.read_text())
summary = report["summary"]
print("AppInspect (precert, cloud):", ", ".join(f"{k} {v}" for k, v in summary.items()))
bad = {k: summary.get(k, 0) for k in ("failure", "error", "future_failure")}
problems = []
readme = readme_path.read_text(encoding="utf-8")
for group in report["reports"][0]["groups"]:
    for check in group["checks"]:
        if check["result"] in ("failure", "error", "future_failure"):
            problems.append(f"{check['result']}: {check['name']}: "
                            + "; ".join(m["message"][:300] for m in check["messages"][:3]))
        elif check["result"] == "warning" and f"`{check['name']}`" not in readme:
            problems.append(f"warning {check['name']} is not explained in {readme_path.name}")
for line in problems:
    print("  " + line)
if any(bad.values()) or problems:
    sys.exit(1)
PYEOF

step "Timings: package $((packaged - started)) s, tests + AppInspect $((tested - packaged)) s (AppInspect done at $((SECONDS - packaged)) s), total $((SECONDS - started)) s"
if (( tests_rc != 0 )); then echo "test-splunk-siem.sh: the add-on's tests failed" >&2; exit "$tests_rc"; fi
if (( verdict_rc != 0 )); then echo "test-splunk-siem.sh: AppInspect did not pass" >&2; tail -30 "$work/appinspect.log" >&2; exit 1; fi
echo "test-splunk-siem.sh: ok" >&2
