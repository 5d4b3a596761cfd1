#!/usr/bin/env bash
# Build every shippable artefact into dist/, on a fresh clone too: each step sets up what it needs
# (./run.sh setup for .venv, scripts/soar-venv.sh, scripts/siem-venv.sh, .venv-xsoar-sdk), as run.sh does.
#
#   ./package.sh                       everything
#   ./package.sh TARGET...             the core and the targets named
#
# Targets, in build order: the core first (every platform ships its wheel), then each platform. A new
# target is one more line in TARGETS: its name, its script (scripts/package-<name>.sh DIST_DIR, printing
# each artefact's path on stdout) and what it builds. The README's package table says how to install each.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/package-common.sh"

TARGETS=(
    "core|scripts/package-core.sh|mde_ipstats-<v>-py3-none-any.whl and mde_ipstats-<v>.tar.gz: the core library and CLI"
    "splunk-soar|scripts/package-splunk-soar.sh|mde-ipstats-splunk-soar-<v>.tgz: the Splunk SOAR app"
    "xsoar|scripts/package-xsoar.sh|mde-ipstats-xsoar-<v>.zip and mde-ipstats-xsoar-docker-<v>.tgz: the Cortex XSOAR pack and its image's build context"
    "cortex|scripts/package-cortex.sh|mde-ipstats-cortex-<v>.tar.gz: the TheHive Cortex analyzer and its report templates"
    "splunk-siem|scripts/package-splunk-siem.sh|TA-mde-ipstats-<v>.tgz: the Splunk Enterprise/Cloud add-on"
    "sentinel|scripts/package-sentinel.sh|mde-ipstats-sentinel-<v>.zip: the Microsoft Sentinel Azure Function (zip deploy) and ARM templates"
)

names=()
for entry in "${TARGETS[@]}"; do names+=("${entry%%|*}"); done
usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    for entry in "${TARGETS[@]}"; do
        IFS='|' read -r name _ what <<<"$entry"
        printf '  %-12s %s\n' "$name" "$what" >&2
    done
}
wanted=("$@")
for t in "${wanted[@]}"; do
    [[ " ${names[*]} " == *" $t "* ]] || { usage; die "unknown target '$t' (known: ${names[*]})"; }
done
[[ ${#wanted[@]} -gt 0 ]] || wanted=("${names[@]}")

dist="$(pkg_dist "$repo/dist")"
step "The project's .venv (./run.sh setup)"
pkg_python >/dev/null

built=()
for entry in "${TARGETS[@]}"; do
    IFS='|' read -r name script _ <<<"$entry"
    if [[ "$name" != core && " ${wanted[*]} " != *" $name "* ]]; then continue; fi
    step "$name ($script)"
    out="$("$repo/$script" "$dist")" || die "$script failed"
    while IFS= read -r artefact; do
        [[ -f "$artefact" ]] || die "$script named $artefact, which does not exist"
        built+=("$artefact")
    done <<<"$out"
done

step "Done in $((SECONDS - pkg_started)) s"
ls -l "${built[@]}"
