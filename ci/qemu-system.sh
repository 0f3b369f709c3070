#!/usr/bin/env bash
# Makes bootable test devices for QEMU's full-system emulators (issue #5,
# server/tests/it/qemu_system.rs):
#   ci/qemu-system.sh [BOARD...]      boards: mipsel (Malta), armhf (virt); default: both
# For each board: Debian 12's kernel and busybox for that architecture (downloaded with apt from
# Debian's archive into target/qemu-system/apt, once), an initramfs holding busybox, the network,
# disk and ext4 modules and the device files of ci/qemu-device/etc, and the device's writable
# flash: an ext4 image (mounted on /overlay, as on OpenWrt) holding ci/qemu-device/flash and the
# static agent from dist/ (ci/build-agents.sh), the device's only service. Leaves
# target/qemu-system/BOARD/vmlinuz, initrd.gz, flash.img (each test boots a copy),
# agent.sha256 (the agent in the flash, as `sha256sum` names it) and
# kernel-release. Installs the packages it needs (root or sudo). Safe to run again: downloads are
# kept, the images are rebuilt (the agent may have changed).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
out=$ROOT/target/qemu-system
apt_dir=$out/apt

# The modules of the flash (a virtio disk holding ext4), after the bus's own, in load order.
flash_modules="virtio_blk crc16 mbcache jbd2 crc32c_generic ext4"

# board -> Debian architecture, kernel flavour, agent target, qemu package, network and disk
# modules in load order.
board_info() {
    case $1 in
    mipsel) echo "mipsel 4kc-malta mipsel-unknown-linux-musl qemu-system-mips mii pcnet32 virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci $flash_modules" ;;
    armhf) echo "armhf armmp armv7-unknown-linux-musleabihf qemu-system-arm failover net_failover virtio_mmio virtio_net $flash_modules" ;;
    *) fail "unknown board $1 (mipsel or armhf)" ;;
    esac
}

# apt_foreign ARGS...: apt-get/apt-cache against Debian's archive for mipsel and armhf, with a
# package list and cache of our own (the machine's apt configuration is left alone).
apt_foreign() {
    local tool=$1
    shift
    "$tool" -q -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" \
        -o APT::Architectures=mipsel,armhf -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

boards=("$@")
[ ${#boards[@]} -gt 0 ] || boards=(mipsel armhf)

need_apt=()
for b in "${boards[@]}"; do
    read -r _ _ _ pkg _ <<<"$(board_info "$b")"
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# mke2fs, for the flash image.
command -v mke2fs >/dev/null || need_apt+=(e2fsprogs)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q --no-install-recommends "${need_apt[@]}" ||
        { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${need_apt[@]}"; } ||
        fail "apt-get install ${need_apt[*]}"
fi

mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
if [ ! -s "$apt_dir/sources.list" ] || ! ls "$apt_dir"/lists/*_Packages >/dev/null 2>&1; then
    # Debian 12's archive, as this machine's own apt sources name it.
    echo "deb [arch=mipsel,armhf] http://deb.debian.org/debian bookworm main" >"$apt_dir/sources.list"
    apt_foreign apt-get update || fail "apt-get update for mipsel and armhf"
fi

for b in "${boards[@]}"; do
    section "test device $b"
    start=$(now)
    read -r arch flavour target _ modules <<<"$(board_info "$b")"
    agent=$ROOT/dist/otto-agent-$target
    [ -f "$agent" ] || fail "no $agent: build it with ci/build-agents.sh $target"

    # The versioned kernel package the flavour's meta package points at, and busybox.
    kernel_pkg=$(apt_foreign apt-cache depends "linux-image-$flavour:$arch" |
        awk '/Depends: linux-image-/ { print $2; exit }')
    [ -n "$kernel_pkg" ] || fail "no kernel package for linux-image-$flavour:$arch"
    kernel_pkg=${kernel_pkg%%:*}
    for pkg in "$kernel_pkg" busybox-static; do
        ls "$apt_dir/debs/${pkg}_"*"_$arch.deb" >/dev/null 2>&1 ||
            (cd "$apt_dir/debs" && apt_foreign apt-get download "$pkg:$arch") ||
            fail "apt-get download $pkg:$arch"
    done

    dir=$out/$b
    rm -rf "$dir" && mkdir -p "$dir/unpacked" "$dir/root"
    for deb in "$apt_dir/debs/${kernel_pkg}_"*"_$arch.deb" "$apt_dir/debs/busybox-static_"*"_$arch.deb"; do
        dpkg-deb -x "$deb" "$dir/unpacked"
    done
    release=${kernel_pkg#linux-image-}
    cp "$dir/unpacked/boot/vmlinuz-$release" "$dir/vmlinuz"
    echo "$release" >"$dir/kernel-release"

    root=$dir/root
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,lib/modules}
    cp -r "$ROOT/ci/qemu-device/etc" "$root/"
    cp "$dir/unpacked/bin/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    ln -s bin/busybox "$root/init"
    : >"$root/etc/modules"
    for m in $modules; do
        ko=$(find "$dir/unpacked/lib/modules/$release" -name "$m.ko" | head -n1)
        [ -n "$ko" ] || fail "module $m not in $kernel_pkg"
        cp "$ko" "$root/lib/modules/"
        echo "$m" >>"$root/etc/modules"
    done
    python3 "$ROOT/ci/initramfs.py" "$root" "$dir/initrd.gz" || fail "initramfs for $b"

    # The flash: 16 MiB of ext4, as small as a router's, with the agent and its configuration.
    flash=$dir/flash
    mkdir -p "$flash/usr/bin"
    cp -r "$ROOT/ci/qemu-device/flash/." "$flash/"
    cp "$agent" "$flash/usr/bin/otto-agent"
    chmod 755 "$flash/usr/bin/otto-agent"
    # Which agent the image holds, so that the test can refuse an image older than dist/.
    (cd "$ROOT" && sha256sum "dist/otto-agent-$target") >"$dir/agent.sha256"
    rm -f "$dir/flash.img"
    mke2fs -q -t ext4 -L flash -d "$flash" "$dir/flash.img" 16M || fail "flash image for $b"
    rm -rf "$dir/unpacked" "$flash"
    echo "kernel $release, initramfs $(stat -c %s "$dir/initrd.gz") bytes, flash 16 MiB, in $(elapsed "$start")"
done
