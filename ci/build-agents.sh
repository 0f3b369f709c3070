#!/usr/bin/env bash
# Builds the agent for the routers it ships to (issue #5):
#   ci/build-agents.sh [TARGET...]     default: every target in AGENT_TARGETS (ci/lib.sh)
# Each one is built with the `size` profile and a from-source, size-optimised std as a static
# executable, copied to dist/otto-agent-<target>, and read back from its ELF headers. Prints a
# table of target, stripped size, linkage and build time; exits non-zero if any build failed or
# any binary is not a static executable. Needs the cross toolchain (ci/install-toolchain.sh).
# Then packages what is in dist/ (ci/packages.py): dist/packages/otto-agent_<version>_<arch>.ipk
# for each OpenWrt architecture and .deb for armhf/arm64/amd64, and prints each one's size.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${AGENT_TARGETS[@]}")
mkdir -p "$ROOT/dist"

rows=() bad=()
for t in "${targets[@]}"; do
    section "otto-agent for $t"
    start=$(now)
    if build_agent "$t"; then
        took=$(elapsed "$start")
        out="$ROOT/dist/otto-agent-$t"
        cp "$(agent_binary "$t")" "$out"
        kind=$(elf_kind "$out")
        size=$(stripped_size "$out")
        rows+=("$(printf '%-32s %12s  %-10s %10s' "$t" "$size" "$kind" "$took")")
        [ "$kind" = static ] || bad+=("$t is $kind, not a static executable")
    else
        rows+=("$(printf '%-32s %12s  %-10s %10s' "$t" - "BUILD FAILED" "$(elapsed "$start")")")
        bad+=("$t did not build")
    fi
done

section "agents in dist/"
printf '%-32s %12s  %-10s %10s\n' target "stripped B" linkage "build time"
printf '%s\n' "${rows[@]}"

section "packages in dist/packages/"
printf '%-48s %12s\n' package bytes
if packages=$(python3 "$ROOT/ci/packages.py" "$ROOT/dist"); then
    printf '%s\n' "$packages" | while read -r file size; do
        printf '%-48s %12s\n' "${file#packages/}" "$size"
    done
else
    bad+=("packaging failed")
fi
if [ ${#bad[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${bad[@]}" >&2
    exit 1
fi
