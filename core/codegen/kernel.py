"""Building a Kernel (program/calls.py) into a module: a generated LLVM
function with a plain C signature, shared by every call site that needs the
same specialization. Kernels take their shapes as runtime arguments where that
costs nothing, so a model like resnet50 needs only a handful of functions and
compiles fast.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ..program.calls import ERR, F32, I64, PTR, Kernel
from ..target.machine import CpuTarget

__all__ = ["ERR", "F32", "I64", "PTR", "Kernel", "get_or_build"]  # Kernel: program/calls.py

def get_or_build(module: ir.Module, kernel: Kernel, target: CpuTarget) -> ir.Function:
    """The kernel's function in `module`, defined on first use."""
    if kernel.name in module.globals:
        return module.globals[kernel.name]
    fn = kernel.build(module, target)
    if fn.name != kernel.name:
        raise AssertionError(f"kernel {kernel.name} built a function named {fn.name}")
    fn.linkage = "internal"
    return fn
