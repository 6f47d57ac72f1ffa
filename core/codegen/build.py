"""Turn an LLVM module into a shared library on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import llvmlite.ir as ir

from ..errors import TargetError
from .machine import CpuTarget, emit_object, optimize


def find_linker() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise TargetError("no C compiler driver (cc/gcc/clang) found to link a shared library; "
                      "install gcc (apt-get install gcc)")


def link_shared(obj: bytes, out_path: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        o = os.path.join(d, "model.o")
        with open(o, "wb") as f:
            f.write(obj)
        tmp = out_path + ".tmp"
        r = subprocess.run([find_linker(), "-shared", "-nostdlib", "-o", tmp, o],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise TargetError(f"linking failed:\n{r.stderr}")
        os.replace(tmp, out_path)


def build_shared(module: ir.Module, target: CpuTarget, out_path: str) -> None:
    ref = optimize(module, target)
    link_shared(emit_object(ref, target), out_path)
