#!/usr/bin/env bash
# Runs a command in the cross-build environment of shared/docs/toolchain.md:
#   ci/env.sh cargo zigbuild --target mips-unknown-linux-musl ...
#   ci/env.sh zig ARGS...          runs the zig that cargo-zigbuild uses
# Debian's rustc/cargo (which have the standard library's source for -Zbuild-std) come first in
# PATH, -Z flags are allowed on that stable compiler, zig is the C compiler and linker, and builds
# go to their own target directory ($CROSS_TARGET_DIR, default target/cross) so they never
# invalidate the host build cache.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# Find the pip-installed zig before Debian's /usr/bin/python3 (which does not see it) comes first
# in PATH: the python3 in PATH, then the virtualenv ci/install-toolchain.sh makes when needed.
find_zig() {
    local py
    for py in python3 "${OTTO_ZIG_VENV:-$HOME/.local/share/otto-ziglang}/bin/python"; do
        "$py" -c 'import ziglang,os;print(os.path.join(os.path.dirname(ziglang.__file__),"zig"))' 2>/dev/null && return
    done
    echo "ci/env.sh: zig not found; run ci/install-toolchain.sh" >&2
    return 1
}
if [ -z "${CARGO_ZIGBUILD_ZIG_PATH:-}" ]; then
    CARGO_ZIGBUILD_ZIG_PATH=$(find_zig)
fi
export CARGO_ZIGBUILD_ZIG_PATH
export PATH=/usr/bin:$PATH
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$here/target/cross}
if [ "${1:-}" = zig ]; then
    shift
    exec "$CARGO_ZIGBUILD_ZIG_PATH" "$@"
fi
exec "$@"
