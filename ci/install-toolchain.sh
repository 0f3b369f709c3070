#!/usr/bin/env bash
# Installs the cross toolchain of shared/docs/toolchain.md: Debian's Rust with the standard
# library's source (for -Zbuild-std), QEMU user-mode emulators, zig (cross C compiler, linker and
# musl for every target), cargo-zigbuild, and llvm-objcopy (drops MIPS's `.pdr` section, which
# zig's linker keeps: see ci/lib.sh); and, for the web UI's tests in a real browser
# (server/tests/it/browser.rs), Debian's Chromium and its WebDriver, with a font; dropbear,
# OpenWrt's SSH server, for the deploy test (server/tests/it/deploy.rs); iproute2 and nftables for
# the call-home test behind NAT in network namespaces (server/tests/it/callhome.rs); and for the API's
# contract test (ci/contract-test.sh), schemathesis, pinned, in a virtualenv. Safe to run
# any number of times: each step is skipped when what it installs is already there. Needs
# rustup's cargo in PATH; uses sudo unless root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo

# zig comes from PyPI (package `ziglang`). If no python3 in PATH has it, it goes into a virtualenv
# of its own, which ci/env.sh also looks in (Debian's python refuses system-wide pip installs).
zig_venv=${OTTO_ZIG_VENV:-$HOME/.local/share/otto-ziglang}
have_zig() { "$here/env.sh" zig version >/dev/null 2>&1; }

# schemathesis comes from PyPI too, at this version, in a virtualenv of its own that
# ci/contract-test.sh runs it from.
st_version=4.32.5
st_venv=${OTTO_SCHEMATHESIS_VENV:-$HOME/.local/share/otto-schemathesis}
have_st() { [ "$("$st_venv/bin/st" --version 2>/dev/null)" = "st, version $st_version" ]; }

need_apt=()
[ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rustc-web cargo-web rust-web-src)
command -v qemu-mips-static >/dev/null || need_apt+=(qemu-user-static)
command -v llvm-objcopy >/dev/null || need_apt+=(llvm)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium chromium-driver fonts-liberation)
[ -x /usr/sbin/dropbear ] || need_apt+=(dropbear-bin)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v nft >/dev/null || need_apt+=(nftables)
# PostgreSQL's server programs: the store's tests and the multi-server tests start private
# clusters with them (server/src/store/postgres/local.rs); no cluster of Debian's is used.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if { ! have_zig || ! have_st; } && ! python3 -c 'import ensurepip' 2>/dev/null; then
    need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

if ! have_zig; then
    python3 -m venv "$zig_venv"
    "$zig_venv/bin/python" -m pip install --quiet ziglang
fi

if ! have_st; then
    python3 -m venv "$st_venv"
    "$st_venv/bin/python" -m pip install --quiet "schemathesis==$st_version"
fi

if ! command -v cargo-zigbuild >/dev/null; then
    cargo install cargo-zigbuild --locked
fi

echo "cross toolchain ready: $(/usr/bin/rustc --version), zig $("$here/env.sh" zig version), $(cargo-zigbuild --version), $(llvm-objcopy --version | grep -m1 -o 'LLVM version [0-9.]*'), schemathesis $st_version"
