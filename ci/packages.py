#!/usr/bin/env python3
"""Packages the static agents of dist/ for OpenWrt (.ipk) and Debian (.deb).

Usage: ci/packages.py [DIST]          (DIST default: dist/ of the repository)

For each dist/otto-agent-<target> present it writes, in DIST/packages/:
  otto-agent_<version>_<arch>.ipk     one per OpenWrt architecture the binary runs on (IPK_ARCHES)
  otto-agent_<version>_<debarch>.deb  for armhf, arm64 and amd64 (DEB_ARCHES)
and prints one line per package: `<file> <bytes>`.

The version is the one the binary carries after its `\\0otto-agent-version:` tag, else the
workspace's (Cargo.toml). Only the standard library, tar/gzip (Python's own) and, for .deb,
dpkg-deb (--root-owner-group: no fakeroot) are used.

.ipk is OpenWrt's format as its ipkg-build makes it: a gzip'd tar of ./debian-binary,
./data.tar.gz and ./control.tar.gz, every file owned by root.
"""

import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The OpenWrt architectures each build serves (a static ARMv7 binary runs on every ARMv7 core).
IPK_ARCHES = {
    "mips-unknown-linux-musl": ["mips_24kc"],
    "mipsel-unknown-linux-musl": ["mipsel_24kc"],
    "armv7-unknown-linux-musleabihf": [
        "arm_cortex-a7",
        "arm_cortex-a7_neon-vfpv4",
        "arm_cortex-a9",
        "arm_cortex-a15_neon-vfpv4",
    ],
    "aarch64-unknown-linux-musl": ["aarch64_cortex-a53", "aarch64_generic"],
    "x86_64-unknown-linux-musl": ["x86_64"],
}
# The Debian architectures.
DEB_ARCHES = {
    "armv7-unknown-linux-musleabihf": "armhf",
    "aarch64-unknown-linux-musl": "arm64",
    "x86_64-unknown-linux-musl": "amd64",
}

MAINTAINER = "Otto developers <otto@example.invalid>"
SUMMARY = "Otto agent: runs what the trusted Otto server asks, over SSH"
DESCRIPTION = (
    " A static, self-contained agent for routers and boards, managed by otto-server.\n"
    " After installing, make it trust a server (otto-agent trust 'ssh-ed25519 ...')\n"
    " or enroll it (otto-agent enroll --server ... --token ...), then start it.\n"
    " Purging the package removes /etc/otto: the configuration and the agent's key."
)

# The configuration a package installs (a conffile: upgrades keep the administrator's).
AGENT_CONF = """\
# Otto agent configuration (docs/agent.md has every setting). The agent serves nobody until it
# trusts a server:  otto-agent trust 'ssh-ed25519 AAAA...'  or  otto-agent enroll ...
listen = 0.0.0.0:12444
key = /etc/otto/agent.key
"""

# Says whether the configuration trusts a server yet (shell, for the maintainer scripts).
TRUSTED = "grep -q '^[[:space:]]*server_key[[:space:]]*=[[:space:]]*[^[:space:]]' /etc/otto/agent.conf 2>/dev/null"
UNTRUSTED_NOTE = (
    "otto-agent: no trusted server yet, so it is not started. Run\n"
    "  otto-agent trust 'ssh-ed25519 AAAA...'   (the key `otto-server host key NAME` prints)\n"
    "or\n"
    "  otto-agent enroll --server ADDRESS --fingerprint SHA256:... --token TOKEN\n"
    "then start it: {start}"
)

IPK_POSTINST = f"""#!/bin/sh
# Enables and starts the agent on a live system (not while an image is built: IPKG_INSTROOT).
[ -z "$IPKG_INSTROOT" ] || exit 0
/etc/init.d/otto-agent enable
if {TRUSTED}; then
	/etc/init.d/otto-agent restart
else
	cat <<'NOTE'
{UNTRUSTED_NOTE.format(start="/etc/init.d/otto-agent start")}
NOTE
fi
exit 0
"""

IPK_PRERM = """#!/bin/sh
# Stops and disables the agent on a live system.
[ -z "$IPKG_INSTROOT" ] || exit 0
/etc/init.d/otto-agent stop 2>/dev/null
/etc/init.d/otto-agent disable 2>/dev/null
exit 0
"""

# What OpenWrt's sysupgrade keeps of the agent (packages list their files in keep.d).
KEEP_D = "/usr/bin/otto-agent\n/usr/bin/otto-agent.previous\n/etc/otto/\n/etc/init.d/otto-agent\n"

DEB_POSTINST = f"""#!/bin/sh
set -e
# Enables the unit; starts (or restarts, on an upgrade) the agent if systemd runs and a server is
# trusted. Without a running systemd (a container, a chroot) nothing is started.
if [ "$1" = configure ]; then
	if command -v systemctl >/dev/null 2>&1; then
		systemctl enable otto-agent.service >/dev/null 2>&1 || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		if {TRUSTED}; then
			systemctl restart otto-agent.service || true
		else
			cat <<'NOTE'
{UNTRUSTED_NOTE.format(start="systemctl start otto-agent")}
NOTE
		fi
	fi
fi
exit 0
"""

DEB_PRERM = """#!/bin/sh
set -e
# Stops and disables the agent when the package is removed (not on an upgrade).
if [ "$1" = remove ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop otto-agent.service || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable otto-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
"""

DEB_POSTRM = """#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
# Purging removes the configuration, the agent's key with it.
if [ "$1" = purge ]; then
	rm -rf /etc/otto
fi
exit 0
"""


def version_of(binary: bytes) -> str:
    """The version after the binary's tag, else the workspace's."""
    tag = b"\0otto-agent-version:"
    at = binary.find(tag)
    if at >= 0:
        end = binary.find(b"\0", at + len(tag))
        found = binary[at + len(tag) : end].decode("ascii", "replace").strip()
        if re.fullmatch(r"[0-9][0-9A-Za-z.+~-]*", found):
            return found
    text = (ROOT / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1]
    match = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
    if not match:
        sys.exit("no version in Cargo.toml's [workspace.package]")
    return match.group(1)


def mtime() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or int(
        subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True
        ).stdout.strip()
        or 0
    )


def targz(entries: list, when: int) -> bytes:
    """A gzip'd tar of (name, bytes or None for a directory, mode) entries, owned by root."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=when) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, data, mode in entries:
                info = tarfile.TarInfo(name)
                info.mode, info.mtime = mode, when
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                if data is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ipk(binary: bytes, version: str, arch: str, out: Path, when: int) -> None:
    init = (ROOT / "packaging/openwrt/otto-agent.init").read_bytes()
    files = [
        ("./usr/bin/otto-agent", binary, 0o755),
        ("./etc/init.d/otto-agent", init, 0o755),
        ("./etc/otto/agent.conf", AGENT_CONF.encode(), 0o600),
        ("./lib/upgrade/keep.d/otto-agent", KEEP_D.encode(), 0o644),
    ]
    # Every directory above a file, parents first: ./etc/, ./etc/init.d/, …
    dirs = sorted({"./" + "/".join(n[2:].split("/")[:i]) + "/" for n, _, _ in files for i in range(1, n.count("/"))})
    entries = [("./", None, 0o755)]
    entries += [(d, None, 0o700 if d == "./etc/otto/" else 0o755) for d in dirs]
    entries += files
    control = (
        f"Package: otto-agent\nVersion: {version}\nSource: otto\nSection: admin\n"
        f"Architecture: {arch}\nMaintainer: {MAINTAINER}\nLicense: MIT OR Apache-2.0\n"
        f"Installed-Size: {sum(len(d) for _, d, _ in files)}\nDescription: {SUMMARY}\n{DESCRIPTION}\n"
    )
    control_tar = targz(
        [
            ("./", None, 0o755),
            ("./control", control.encode(), 0o644),
            ("./conffiles", b"/etc/otto/agent.conf\n", 0o644),
            ("./postinst", IPK_POSTINST.encode(), 0o755),
            ("./prerm", IPK_PRERM.encode(), 0o755),
        ],
        when,
    )
    package = targz(
        [
            ("./debian-binary", b"2.0\n", 0o644),
            ("./data.tar.gz", targz(entries, when), 0o644),
            ("./control.tar.gz", control_tar, 0o644),
        ],
        when,
    )
    write_atomically(out, package)


def deb(binary: bytes, version: str, arch: str, out: Path) -> None:
    unit = (ROOT / "packaging/systemd/otto-agent.service").read_text()
    # The unit names /usr/local/bin (an agent installed by hand); the package's is /usr/bin.
    unit = unit.replace("/usr/local/bin/otto-agent", "/usr/bin/otto-agent")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        put = lambda path, data, mode: (  # noqa: E731
            (tree / path).parent.mkdir(parents=True, exist_ok=True),
            (tree / path).write_bytes(data),
            (tree / path).chmod(mode),
        )
        put("usr/bin/otto-agent", binary, 0o755)
        put("lib/systemd/system/otto-agent.service", unit.encode(), 0o644)
        put("etc/otto/agent.conf", AGENT_CONF.encode(), 0o600)
        (tree / "etc/otto").chmod(0o700)
        size_kib = (len(binary) + len(unit) + len(AGENT_CONF) + 1023) // 1024
        control = (
            f"Package: otto-agent\nVersion: {version}\nArchitecture: {arch}\n"
            f"Maintainer: {MAINTAINER}\nSection: admin\nPriority: optional\n"
            f"Installed-Size: {size_kib}\nDescription: {SUMMARY}\n{DESCRIPTION}\n"
        )
        put("DEBIAN/control", control.encode(), 0o644)
        put("DEBIAN/conffiles", b"/etc/otto/agent.conf\n", 0o644)
        put("DEBIAN/postinst", DEB_POSTINST.encode(), 0o755)
        put("DEBIAN/prerm", DEB_PRERM.encode(), 0o755)
        put("DEBIAN/postrm", DEB_POSTRM.encode(), 0o755)
        built = Path(tmp) / "out.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(built)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        write_atomically(out, built.read_bytes())


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def main(dist: Path) -> int:
    out_dir = dist / "packages"
    out_dir.mkdir(parents=True, exist_ok=True)
    when = mtime()
    made = []
    for target in IPK_ARCHES:
        path = dist / f"otto-agent-{target}"
        if not path.is_file():
            continue
        binary = path.read_bytes()
        version = version_of(binary)
        for arch in IPK_ARCHES[target]:
            out = out_dir / f"otto-agent_{version}_{arch}.ipk"
            ipk(binary, version, arch, out, when)
            made.append(out)
        if target in DEB_ARCHES:
            if shutil.which("dpkg-deb") is None:
                print("no dpkg-deb: no .deb packages", file=sys.stderr)
                return 1
            out = out_dir / f"otto-agent_{version}_{DEB_ARCHES[target]}.deb"
            deb(binary, version, DEB_ARCHES[target], out)
            made.append(out)
    if not made:
        print(f"no otto-agent-<target> in {dist}: nothing to package", file=sys.stderr)
        return 1
    for out in made:
        print(f"{out.relative_to(dist)} {out.stat().st_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist"))
