#!/usr/bin/env bash
# THE test command: everything CI checks, in order, stopping at the first failure.
#   ci/test.sh
# 1. installs the cross toolchain if anything is missing (ci/install-toolchain.sh; a no-op after);
# 2. host checks with the rustup toolchain: rustfmt, clippy (warnings are errors), cargo test
#    (and the fleet simulator, the agent built with the feature `sim`);
# 3. the API held to its OpenAPI document by schemathesis (ci/contract-test.sh), against a real
#    serve and real agents;
# 4. the cross checks of ci/cross-check.sh (no_std build, codec and agent tests under QEMU, the
#    five static agents and the MIPS size budget, the server driving each agent under QEMU).
# Host builds use target/ (or $CARGO_TARGET_DIR); cross builds use target/cross ($CROSS_TARGET_DIR).
# Every test must run here: OTTO_REQUIRE_TOOLS=1 makes a test that lacks its tool (Chromium, QEMU,
# dropbear…) fail instead of skipping (server/tests/it/harness.rs, `tool_missing`), and
# OTTO_DEPLOY_E2E=1 lets the deploy test add its key to ~/.ssh/authorized_keys while it runs
# (it removes it after). The QEMU tests need the agents and device images the cross checks build
# first, and so do the package tests (dist/packages/): the host step leaves them out by name,
# and ci/cross-check.sh runs them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export OTTO_REQUIRE_TOOLS=1 OTTO_DEPLOY_E2E=1

timings=()
# step NAME CMD...: runs CMD under a header, records its time, stops the run if it fails.
step() {
    local name=$1 start
    shift
    section "$name"
    start=$(now)
    "$@" || fail "$name  (command: $*)"
    timings+=("$(printf '%-44s %10s' "$name" "$(elapsed "$start")")")
}

step "cross toolchain (ci/install-toolchain.sh)" "$ROOT/ci/install-toolchain.sh"
step "format (cargo fmt --check)" cargo fmt --all -- --check
step "lint (cargo clippy -D warnings)" cargo clippy --workspace --all-targets -- -D warnings
step "lint of the fleet simulator (feature sim)" cargo clippy -p otto-agent --features sim --all-targets -- -D warnings
step "host tests (cargo test --workspace)" tests cargo test --workspace -- --skip qemu:: --skip qemu_system:: --skip packages::
step "fleet simulator (otto-agent --features sim)" tests cargo test -p otto-agent --features sim --test simulate
step "API contract (ci/contract-test.sh)" "$ROOT/ci/contract-test.sh"
step "cross checks (ci/cross-check.sh)" "$ROOT/ci/cross-check.sh"

section "all checks passed"
printf '%s\n' "${timings[@]}"
