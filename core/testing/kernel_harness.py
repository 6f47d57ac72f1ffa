"""Compile kernels alone and call them through ctypes, to test them against numpy."""

from __future__ import annotations

import ctypes
import os
import tempfile

import numpy as np

from ..codegen.build import build_shared
from ..codegen.machine import new_module
from ..program import F32, I64, PTR, Kernel
from ..target.machine import CpuTarget, host_cpu, host_features, host_triple

_CTYPES = {PTR: ctypes.c_void_p, I64: ctypes.c_int64, F32: ctypes.c_float}


def host_target(vector_bits: int = 512) -> CpuTarget:
    return CpuTarget(host_triple(), host_cpu(), host_features(), vector_bits)


class CompiledKernels:
    def __init__(self, kernels: list[Kernel], target: CpuTarget):
        module = new_module("kernels", target)
        for k in kernels:
            k.build(module, target)  # external linkage, so ctypes can find it
        self._dir = tempfile.TemporaryDirectory()
        path = os.path.join(self._dir.name, "kernels.so")
        build_shared(module, target, path)
        self.lib = ctypes.CDLL(path)
        self.kernels = {k.name: k for k in kernels}
        self.ir = str(module)

    def __call__(self, name: str, *args: object) -> None:
        k = self.kernels[name]
        fn = getattr(self.lib, name)
        fn.restype = None
        fn.argtypes = [_CTYPES[p] for p in k.params]
        conv = []
        for p, a in zip(k.params, args, strict=True):
            if p == PTR:
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous
                conv.append(a.ctypes.data)
            else:
                conv.append(a)
        fn(*conv)
