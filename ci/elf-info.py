#!/usr/bin/env python3
"""Reads an ELF file's headers and says whether it is a static executable.

Usage: elf-info.py FILE
Prints one line `<kind> <stripped>`, where kind is
  static      no PT_INTERP program header and no dynamic section: the kernel maps it and jumps in,
  static-pie  no interpreter, but a dynamic section the program relocates itself with,
  dynamic     it names a program interpreter (ld.so) that must exist on the target,
and stripped is `stripped` or `symbols` (it still has a .symtab). Exits 2 if FILE is not ELF.
Only the standard library is used, so it needs no binutils for the target architecture.
"""

import struct
import sys

PT_DYNAMIC, PT_INTERP = 2, 3
SHT_SYMTAB, SHT_DYNAMIC = 2, 6


def main(path: str) -> int:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 52 or data[:4] != b"\x7fELF":
        print(f"{path}: not an ELF file", file=sys.stderr)
        return 2
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        phoff, shoff = struct.unpack_from(end + "QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 0x36)
    else:
        phoff, shoff = struct.unpack_from(end + "II", data, 0x1C)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 0x2A)

    ptypes = [struct.unpack_from(end + "I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    stypes = [struct.unpack_from(end + "I", data, shoff + i * shentsize + 4)[0] for i in range(shnum)]

    if PT_INTERP in ptypes:
        kind = "dynamic"
    elif PT_DYNAMIC in ptypes or SHT_DYNAMIC in stypes:
        kind = "static-pie"
    else:
        kind = "static"
    print(kind, "symbols" if SHT_SYMTAB in stypes else "stripped")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
