#!/usr/bin/env python3
"""Packs a directory into a gzip-compressed initramfs (cpio "newc", the format Linux unpacks).

Usage: initramfs.py DIR OUT
Every file, directory and symbolic link under DIR goes in with its permission bits, owned by
root, plus the device node /dev/console (the kernel opens it for init before anything is
mounted). Written here rather than with cpio(1) so that no root rights (mknod) and no extra
package are needed.
"""

import gzip
import os
import stat
import sys

CONSOLE = (5, 1)  # the character device /dev/console


def entry(out, ino: int, name: str, mode: int, data: bytes = b"", rdev=(0, 0)) -> None:
    """Writes one newc header, the NUL-terminated name and the data, each padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
    out.write(encoded + b"\0" * (-(110 + len(encoded)) % 4))
    out.write(data + b"\0" * (-len(data) % 4))


def main(root: str, target: str) -> int:
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            paths.append(os.path.join(dirpath, name))
    tmp = target + ".tmp"
    with gzip.open(tmp, "wb", compresslevel=9) as out:
        ino = 1
        has_dev = False
        for path in paths:
            name = os.path.relpath(path, root)
            st = os.lstat(path)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entry(out, ino, name, stat.S_IFLNK | 0o777, os.readlink(path).encode())
            elif stat.S_ISDIR(st.st_mode):
                entry(out, ino, name, stat.S_IFDIR | perm)
                has_dev |= name == "dev"
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry(out, ino, name, stat.S_IFREG | perm, f.read())
            else:
                print(f"initramfs.py: skipping {path}: not a file, directory or link", file=sys.stderr)
            ino += 1
        if not has_dev:
            entry(out, ino, "dev", stat.S_IFDIR | 0o755)
            ino += 1
        entry(out, ino, "dev/console", stat.S_IFCHR | 0o600, rdev=CONSOLE)
        entry(out, 0, "TRAILER!!!", 0)
    os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
