#!/usr/bin/env bash
# The cross checks CI runs after the host tests (ci/test.sh calls this):
#   1. the codec crate builds for a bare-metal target with only `core`: it really is no_std;
#   2. the codec's tests pass on big-endian 32-bit MIPS, run under qemu-mips-static;
#   3. the agent's own tests pass on MIPS (and, but for the self-update's, on ARMv7) under QEMU (the test binary under cargo's
#      runner, the agent it starts under $OTTO_AGENT_RUNNER: no binfmt_misc needed);
#   4. the agent builds as a static executable for all five router targets (sizes printed), and
#      each stays within its size budget (768 KiB for MIPS, the others in proportion); its packages
#      (.ipk for OpenWrt, .deb) are unpacked and checked, the .deb installed, upgraded and purged
#      (server/tests/it/packages.rs);
#   5. end to end: the host's server library drives each cross-built agent under its emulator
#      (server/tests/it/qemu.rs);
#   6. whole devices: Debian's kernel boots in qemu-system-mipsel (Malta) and qemu-system-arm
#      (virt) with the agent as the only service, and the server drives it over QEMU's network
#      (ci/qemu-system.sh makes the images; server/tests/it/qemu_system.rs).
# Needs the cross toolchain (ci/install-toolchain.sh). Stops at the first failure. No test may
# skip for want of a tool here: OTTO_REQUIRE_TOOLS=1 makes that a failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export OTTO_REQUIRE_TOOLS=1

section "otto-proto is no_std: build for thumbv7em-none-eabihf with -Zbuild-std=core"
start=$(now)
cross cargo build -p otto-proto --target thumbv7em-none-eabihf -Zbuild-std=core ||
    fail "otto-proto does not build for thumbv7em-none-eabihf with core only (is something using std or alloc?)"
echo "took $(elapsed "$start")"

section "otto-proto tests on mips-unknown-linux-musl (big-endian) under qemu-mips-static"
start=$(now)
# Property tests run far fewer cases under emulation than on the host; the host run covers depth.
# Tests unwind (test profile), so the whole std is built from source, not only std,panic_abort.
PROPTEST_CASES=${PROPTEST_CASES:-32} \
    cross cargo-zigbuild test -p otto-proto -Zbuild-std --target mips-unknown-linux-musl ||
    fail "otto-proto tests on mips-unknown-linux-musl (big-endian) under QEMU"
echo "took $(elapsed "$start")"

# Every agent test on MIPS (big-endian, 32-bit); on ARMv7 all but the self-update's, whose
# transfers and checks are the same code on every target (its ELF check differs only by the
# constants the host and MIPS runs already hold to), and which take minutes under emulation.
arm_tests=(--bins)
for file in agent/tests/*.rs; do
    name=$(basename "$file" .rs)
    [ "$name" = update ] || arm_tests+=(--test "$name")
done
for t in mips-unknown-linux-musl:qemu-mips-static:all armv7-unknown-linux-musleabihf:qemu-arm-static:arm; do
    IFS=: read -r target runner which <<<"$t"
    section "otto-agent tests on $target under $runner"
    start=$(now)
    selection=()
    [ "$which" = arm ] && selection=("${arm_tests[@]}")
    OTTO_AGENT_RUNNER=$runner cross cargo-zigbuild test -p otto-agent -Zbuild-std --target "$target" \
        "${selection[@]}" || fail "otto-agent tests on $target under QEMU"
    echo "took $(elapsed "$start")"
done

section "otto-agent static executables for every router target"
"$ROOT/ci/build-agents.sh" || fail "otto-agent cross builds (see the table above)"
# Budgets in KiB of the stripped executable (docs/size.md): 768 KiB for MIPS (issue 28; 1 MiB
# before), each other target in proportion to its size beside MIPS's when the budget was set.
declare -A budget_kib=([mips-unknown-linux-musl]=768 [mipsel-unknown-linux-musl]=768
    [armv7-unknown-linux-musleabihf]=613 [aarch64-unknown-linux-musl]=532
    [x86_64-unknown-linux-musl]=648)
for t in "${AGENT_TARGETS[@]}"; do
    size=$(stripped_size "$ROOT/dist/otto-agent-$t")
    budget=$((budget_kib[$t] * 1024))
    [ "$size" -le "$budget" ] || fail "otto-agent for $t is $size bytes, over its budget of $budget"
    echo "otto-agent for $t: $size bytes of a $budget-byte budget"
done

section "the agent's packages: every .ipk unpacked and checked, the .deb installed and purged"
start=$(now)
tests cargo test -p otto-server --test it packages:: -- --nocapture ||
    fail "the agent's packages (server/tests/it/packages.rs)"
echo "took $(elapsed "$start")"
section "the server with the agents built in (feature bundled-agents, over dist/)"
# A check, not a release build: it proves build.rs finds dist/'s binaries and the feature's code
# compiles; `cargo build --release -p otto-server --features bundled-agents` makes the binary.
cargo check -p otto-server --features bundled-agents || fail "otto-server --features bundled-agents"

section "end to end: the server library drives each agent under QEMU (server/tests/it/qemu.rs)"
start=$(now)
# Host build (rustup's toolchain, the host target dir); prints each emulated agent's peak RSS.
tests cargo test -p otto-server --test it qemu:: -- --nocapture ||
    fail "end-to-end tests of the cross-built agents under QEMU"
echo "took $(elapsed "$start")"

section "whole devices: Debian's kernel and the agent in qemu-system (tests/it/qemu_system.rs)"
start=$(now)
"$ROOT/ci/qemu-system.sh" || fail "ci/qemu-system.sh (kernels, busybox and initramfs images)"
tests cargo test -p otto-server --test it qemu_system:: -- --nocapture ||
    fail "end-to-end tests of the agent on emulated devices"
echo "took $(elapsed "$start")"
