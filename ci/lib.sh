# Shared by ci/test.sh, ci/cross-check.sh and ci/build-agents.sh (source it; it runs nothing).
# One place for: section headers and timings, the agent's cross-build invocation, and reading
# an ELF file to tell whether it is a static executable and how big it is stripped.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Cross builds (Debian's cargo via ci/env.sh) get their own target directory so they never
# invalidate the host build cache; env.sh reads the same variable.
export CROSS_TARGET_DIR=${CROSS_TARGET_DIR:-$ROOT/target/cross}

# The agent's router targets, in the order the table lists them.
AGENT_TARGETS=(mips-unknown-linux-musl mipsel-unknown-linux-musl armv7-unknown-linux-musleabihf
    aarch64-unknown-linux-musl x86_64-unknown-linux-musl)

# Seconds since the epoch, with microseconds.
now() { echo "${EPOCHREALTIME/,/.}"; }

# elapsed START -> "12.3 s" since START (a value of `now`).
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# section TITLE: a header that stands out in a long CI log.
section() { printf '\n==== %s ====\n' "$*"; }

# fail MESSAGE: says what failed, on stderr, and exits non-zero.
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# cross CMD...: runs CMD in the cross-build environment (Debian's cargo/rustc with the std source,
# RUSTC_BOOTSTRAP=1, zig for cargo-zigbuild, CARGO_TARGET_DIR=$CROSS_TARGET_DIR).
cross() { "$ROOT/ci/env.sh" "$@"; }

# The agent's size flags, on top of the per-target rustflags of .cargo/config.toml (cargo joins
# the two lists). They apply to the shipped build only, never to tests, which need unwinding:
#   -Cpanic=immediate-abort      a panic aborts at once: no message, no backtrace printer, no
#                                unwinder in the binary (the service manager restarts the agent);
#   -Cforce-unwind-tables=no     no .eh_frame: nothing unwinds any more;
#   -Zlocation-detail=none       no file/line strings for panics and #[track_caller];
#   sha2_backend_soft="compact"  the sha2 crate's portable SHA-256/512 with rolled-up rounds.
# docs/size.md has what each one saves.
AGENT_SIZE_RUSTFLAGS='["-Zunstable-options", "-Cpanic=immediate-abort", "-Cforce-unwind-tables=no", "-Zlocation-detail=none", "--cfg", "sha2_backend_soft=\"compact\""]'

# build_agent TARGET: builds otto-agent with the `size` profile as a static executable for TARGET
# and leaves it at `agent_binary TARGET`. std is rebuilt from source with the same flags and its
# optimize_for_size feature; the per-target rustflags (crt-static, relocation model) come from
# .cargo/config.toml. On MIPS, the `.pdr` section (procedure descriptors for debuggers, ~9% of
# the file) is removed afterwards: GNU ld drops it, but zig's linker (lld) keeps it.
build_agent() {
    cross cargo zigbuild -p otto-agent --features quiet-deps --profile size \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size --target "$1" \
        --config "target.$1.rustflags=$AGENT_SIZE_RUSTFLAGS" || return
    case $1 in
    mips*) llvm-objcopy --remove-section=.pdr "$(agent_binary "$1")" ;;
    esac
}

# agent_binary TARGET: where build_agent leaves the executable.
agent_binary() { echo "$CROSS_TARGET_DIR/$1/size/otto-agent"; }

# elf_kind FILE -> static | static-pie | dynamic (see ci/elf-info.py).
elf_kind() { python3 "$ROOT/ci/elf-info.py" "$1" | cut -d' ' -f1; }

# stripped_size FILE -> size in bytes without symbols. The size profile strips already; a file
# that still has a symbol table is measured from a copy stripped by zig's objcopy.
stripped_size() {
    local info tmp size
    info=$(python3 "$ROOT/ci/elf-info.py" "$1") || return 1
    if [ "${info#* }" = stripped ]; then
        stat -c %s "$1"
    else
        tmp=$(mktemp)
        cross zig objcopy --strip-all "$1" "$tmp" && size=$(stat -c %s "$tmp")
        rm -f "$tmp"
        echo "${size:?could not strip $1}"
    fi
}

# tests CMD...: runs a test command, its output shown as it comes and kept; when it fails, the
# message of each panic is repeated at the end, where the tail of a long log shows it (a test's
# backtrace and the output of the tests beside it would otherwise push it out of sight).
tests() {
    local log status
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        section "why the tests failed (each panic's message again)"
        grep -A 8 "panicked at" "$log" | grep -v "^note: run with" | head -n 120
    fi
    rm -f "$log"
    return "$status"
}
