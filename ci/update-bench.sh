#!/usr/bin/env bash
# The time to update N local agents (default 100) with `update-agents`, printed (issue 24's
# figure): real agents on loopback, the binary this build's agent with another version.
#   ci/update-bench.sh [N]
# Until the agents take updates (issue 24, part A) they refuse it, and the figure is the time
# to send and be refused. Not part of CI: a figure, not a check.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
OTTO_UPDATE_BENCH_N="${1:-100}" cargo test -p otto-server --test it updates::update_bench \
    -- --ignored --exact --nocapture
