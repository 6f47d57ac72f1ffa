"""Giving freed memory back to the system.

glibc keeps memory a process has freed for its next allocations instead of
returning it (it trims only the top of the heap, and only past a threshold),
so after a large transient copy (a model's weights read into a proto, a
compile's LLVM module, an artifact's weights blob once saved and mapped) the
process would stay as large as its peak. malloc_trim returns the free pages.
"""

from __future__ import annotations

import ctypes


def give_back_freed_memory() -> None:
    """glibc's malloc_trim(0); nothing where the C library has none (macOS, musl)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
