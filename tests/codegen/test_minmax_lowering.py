"""Float min / max (llvm_util.minmax) on every narrow target: built without LLVM
aborting (Cortex-M: maximum of doubles, "Unexpected illegal type") and without
calls into libm-style helpers (wasm32: fmaxf per element) where the hardware
has the instruction."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import llvmlite.ir as ir
import pytest

from tinyc.codegen import llvm_util as U
from tinyc.codegen.machine import new_module, optimize
from tinyc.errors import TargetError
from tinyc.target.machine import CpuTarget

TARGETS = {  # name: (triple, cpu, features, vector bits)
    "cortex-m4": ("thumbv7em-none-eabi", "cortex-m4", "+dsp,+vfp4d16sp", 32),
    "cortex-m55": ("thumbv8.1m.main-none-eabi", "cortex-m55", "+mve.fp", 128),
    "wasm32": ("wasm32-unknown-unknown", "generic", "-simd128", 32),
    "wasm32-simd": ("wasm32-unknown-unknown", "generic", "+simd128", 128),
    "riscv64": ("riscv64-unknown-linux-gnu", "generic-rv64", "+m,+a,+f,+d,+c", 128),
}

# Builds f(x, y) = which(x, y) for every which, element type and width, and prints
# the assembly; in a child process, so that an LLVM abort fails one test only.
CHILD = textwrap.dedent("""
    import sys
    import llvmlite.ir as ir
    from tinyc.codegen import llvm_util as U
    from tinyc.codegen.machine import CpuTarget, emit_assembly, new_module, optimize
    triple, cpu, features, bits = sys.argv[1:5]
    t = CpuTarget(triple, cpu, features, int(bits))
    m = new_module("minmax", t)
    for which in ("maxnum", "minnum", "maximum", "minimum"):
        for elem, tag in ((U.F32, "f32"), (U.F64, "f64")):
            for lanes in (1, 4):
                ty = elem if lanes == 1 else ir.VectorType(elem, lanes)
                for flags in ((), ("nnan",)):
                    name = f"{which}_{tag}_{lanes}_{'nnan' if flags else 'ieee'}"
                    fn, b = U.define(m, name, [ty, ty], ret=ty)
                    b.ret(U.minmax(b, which, *fn.args, flags))
    print(emit_assembly(optimize(m, t), t))
""")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_minmax_builds_on_narrow_targets(target):
    p = subprocess.run([sys.executable, "-c", CHILD, *map(str, TARGETS[target])],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{target}: exit {p.returncode}\n{p.stderr[-2000:]}"
    calls = set(re.findall(r"\b(fmaxf?|fminf?)\b", p.stdout))
    if target.startswith("wasm"):
        # IEEE maximum / minimum and NaN-free maxnum are f32.max / f64.max
        assert "f32.max" in p.stdout and "f64.min" in p.stdout
        assert not calls, f"{target} calls {calls}"
    if target.startswith("cortex"):
        assert not calls, f"{target} calls {calls}"


@pytest.mark.parametrize("target", ["cortex-m4", "wasm32-simd"])
def test_what_llvm_would_crash_on_is_an_error(target):
    """Written around minmax / dtype_ir on purpose (maximum of doubles on Cortex-M, a
    compare of half vectors on wasm): the check of the optimized IR raises instead
    of letting LLVM abort or loop forever in instruction selection."""
    triple, cpu, features, bits = TARGETS[target]
    t = CpuTarget(triple, cpu, features, bits)
    m = new_module("unselectable", t)
    if target.startswith("cortex"):
        fn, b = U.define(m, "f", [U.F64, U.F64], ret=U.F64)
        b.ret(b.call(U.intrinsic(m, "llvm.maximum.f64", U.F64, [U.F64, U.F64]), list(fn.args)))
    else:
        halves = ir.VectorType(ir.HalfType(), 4)
        fn, b = U.define(m, "f", [halves, halves], ret=U.I32)
        lanes = b.fcmp_unordered("uno", *fn.args)
        b.ret(b.zext(b.bitcast(lanes, ir.IntType(4)), U.I32))
    with pytest.raises(TargetError, match="LLVM cannot compile"):
        optimize(m, t)
