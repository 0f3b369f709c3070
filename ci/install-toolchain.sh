#!/usr/bin/env bash
# Installs the cross toolchain of shared/docs/toolchain.md: Debian's Rust with the standard
# library's source (for -Zbuild-std), QEMU user-mode emulators, zig (cross C compiler, linker and
# musl for every target) and cargo-zigbuild. Safe to run any number of times: each step is skipped
# when what it installs is already there.
set -euo pipefail

need_apt=()
[ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rustc-web cargo-web rust-web-src)
command -v qemu-mips-static >/dev/null || need_apt+=(qemu-user-static)
command -v file >/dev/null || need_apt+=(file)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

if ! python3 -c 'import ziglang' 2>/dev/null; then
    python3 -m pip install --quiet ziglang
fi

if ! command -v cargo-zigbuild >/dev/null; then
    cargo install cargo-zigbuild --locked
fi

echo "cross toolchain ready: $(/usr/bin/rustc --version), zig $("$(dirname "$0")/env.sh" zig version)"
