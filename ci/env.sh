#!/usr/bin/env bash
# Runs a command in the cross-build environment of shared/docs/toolchain.md:
#   ci/env.sh cargo zigbuild --target mips-unknown-linux-musl ...
# Debian's rustc/cargo (which have the standard library's source for -Zbuild-std) come first in
# PATH, -Z flags are allowed on that stable compiler, zig is the C compiler and linker, and builds
# go to their own target directory so they never invalidate the host build cache.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Ask the python that pip installed zig into, before Debian's /usr/bin/python3 comes first in PATH.
CARGO_ZIGBUILD_ZIG_PATH=$(python3 -c 'import ziglang,os;print(os.path.join(os.path.dirname(ziglang.__file__),"zig"))')
export CARGO_ZIGBUILD_ZIG_PATH
export PATH=/usr/bin:$PATH
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$here/target/cross}
if [ "${1:-}" = zig ]; then
    shift
    exec "$CARGO_ZIGBUILD_ZIG_PATH" "$@"
fi
exec "$@"
