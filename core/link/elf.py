"""Just enough of ELF (32/64-bit, little endian) to measure an artifact: the
sections a program occupies memory with, and the sizes of its symbols.

A few struct reads instead of a dependency (pyelftools) or a tool that may be
missing (llvm-size).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_SYMTAB, SHT_NOBITS = 2, 8


@dataclass(frozen=True)
class Section:
    name: str
    flags: int
    size: int
    stored: bool = True  # has bytes in the file (not .bss): a loaded one is in flash too

    @property
    def loaded(self) -> bool:  # occupies memory when the program runs
        return bool(self.flags & SHF_ALLOC)

    @property
    def code(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)

    @property
    def writable(self) -> bool:
        return bool(self.flags & SHF_WRITE)


@dataclass(frozen=True)
class _Header:
    name: int
    kind: int
    flags: int
    offset: int
    size: int
    link: int
    entsize: int


class Elf:
    def __init__(self, data: bytes):
        if data[:4] != b"\x7fELF" or data[5] != 1:
            raise ValueError("not a little-endian ELF file")
        self.data = data
        self.wide = data[4] == 2  # ELFCLASS64
        offset_field = ("<Q", 0x28) if self.wide else ("<I", 0x20)  # e_shoff
        shoff = struct.unpack_from(offset_field[0], data, offset_field[1])[0]
        entsize, count, names = struct.unpack_from("<HHH", data, 0x3A if self.wide else 0x2E)
        self._headers = [self._header(shoff + i * entsize) for i in range(count)]
        names_at = self._headers[names].offset if self._headers else 0
        self.sections = [Section(self._string(names_at + h.name), h.flags, h.size,
                                 h.kind != SHT_NOBITS) for h in self._headers]

    def _header(self, at: int) -> _Header:
        fmt = "<IIQQQQIIQQ" if self.wide else "<IIIIIIIIII"
        name, kind, flags, _, offset, size, link, _, _, entsize = struct.unpack_from(
            fmt, self.data, at)
        return _Header(name, kind, flags, offset, size, link, entsize)

    def _string(self, at: int) -> str:
        return self.data[at:self.data.index(b"\0", at)].decode()

    def symbol_sizes(self) -> dict[str, int]:
        """Size of every named symbol of the symbol table."""
        sizes: dict[str, int] = {}
        for h in self._headers:
            if h.kind != SHT_SYMTAB:
                continue
            strings = self._headers[h.link].offset
            for at in range(h.offset, h.offset + h.size, h.entsize):
                name, size = self._symbol(at)
                if name:
                    sizes[self._string(strings + name)] = size
        return sizes

    def _symbol(self, at: int) -> tuple[int, int]:
        if self.wide:
            name, _, _, _, _, size = struct.unpack_from("<IBBHQQ", self.data, at)
        else:
            name, _, size, _, _, _ = struct.unpack_from("<IIIBBH", self.data, at)
        return name, size

    def loaded_bytes(self, code: bool) -> int:
        """Bytes of memory the program's code (or its data: rodata, data, bss) takes."""
        return sum(s.size for s in self.sections if s.loaded and s.code == code)
