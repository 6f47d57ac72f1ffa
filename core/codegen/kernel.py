"""The contract between lowering and codegen: a Kernel is a generated LLVM
function with a plain C signature, shared by every call site that needs the
same specialization. Kernels take their shapes as runtime arguments where that
costs nothing, so a model like resnet50 needs only a handful of functions and
compiles fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.ir as ir

from .machine import CpuTarget

# Parameter kinds of a kernel's C signature. ERR: the error record
# (runtime/status.py); a kernel taking it is a check and returns an i32 status.
PTR, I64, F32, ERR = "ptr", "i64", "f32", "err"


@dataclass(frozen=True)
class Kernel:
    name: str  # the symbol; encodes the specialization, e.g. "gemm_f32_8x32_biasrow"
    params: tuple[str, ...]  # one of PTR / I64 / F32 per argument
    build: Callable[[ir.Module, CpuTarget], ir.Function]  # defines a function called `name`

    @property
    def is_check(self) -> bool:
        return ERR in self.params

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kernel) and other.name == self.name


def get_or_build(module: ir.Module, kernel: Kernel, target: CpuTarget) -> ir.Function:
    """The kernel's function in `module`, defined on first use."""
    if kernel.name in module.globals:
        return module.globals[kernel.name]
    fn = kernel.build(module, target)
    if fn.name != kernel.name:
        raise AssertionError(f"kernel {kernel.name} built a function named {fn.name}")
    fn.linkage = "internal"
    return fn
