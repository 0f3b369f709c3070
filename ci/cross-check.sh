#!/usr/bin/env bash
# The cross checks CI runs after the host tests (ci/test.sh calls this):
#   1. the codec crate builds for a bare-metal target with only `core`: it really is no_std;
#   2. the codec's tests pass on big-endian 32-bit MIPS, run under qemu-mips-static;
#   3. the agent builds as a static executable for MIPS and ARMv7 routers (sizes printed).
# Needs the cross toolchain (ci/install-toolchain.sh). Stops at the first failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

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

section "otto-agent static executables for MIPS and ARMv7"
"$ROOT/ci/build-agents.sh" mips-unknown-linux-musl armv7-unknown-linux-musleabihf ||
    fail "otto-agent cross build for mips/armv7 (see the table above)"
