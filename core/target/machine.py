"""The description of a CPU that code is built for, and what the host CPU is.

Shared by every stage (lowering sizes vectors and scratch by it, codegen emits
for it, the runtime checks an artifact's features against the host), so it
lives at the bottom with the rest of the target description. llvmlite is
imported only to ask about the host.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuTarget:
    """What codegen needs to know about a CPU: where to emit and how wide vectors are."""

    triple: str
    cpu: str
    features: str  # LLVM feature string, e.g. "+avx2,+fma"
    vector_bits: int  # widest SIMD register used for f32 kernels
    # Worker threads the code may split a kernel across (the runtime's pool,
    # core/runtime/c); kernels size per-worker scratch by it. 1: serial code
    # that never calls the pool.
    threads: int = 1

    @property
    def f32_lanes(self) -> int:
        return max(1, self.vector_bits // 32)


@functools.cache
def init_llvm() -> None:
    import llvmlite.binding as llvm

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def host_triple() -> str:
    import llvmlite.binding as llvm

    init_llvm()
    return llvm.get_process_triple()


def host_cpu() -> str:
    import llvmlite.binding as llvm

    init_llvm()
    return llvm.get_host_cpu_name()


def host_features() -> str:
    import llvmlite.binding as llvm

    init_llvm()
    return llvm.get_host_cpu_features().flatten()
