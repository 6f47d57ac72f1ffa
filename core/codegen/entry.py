"""The model's one native entry point:

    int tinyc_run(void *const *inputs, void *const *outputs,
                  const void *weights, void *arena)

It is straight-line code: per lowered node, calls to shared kernels with the
buffers' addresses (arena / weights offsets fixed at compile time) and the
shapes as immediates. No allocation, no Python.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ..link.memory_plan import Location, MemoryPlan
from ..lower.program import Buf, Const, LoweredNode, Scratch
from . import llvm_util as u
from .kernel import F32, I64, PTR, get_or_build
from .machine import CpuTarget

ENTRY = "tinyc_run"


def build_entry(module: ir.Module, lowered: list[LoweredNode], plan: MemoryPlan,
                n_inputs: int, n_outputs: int, target: CpuTarget) -> ir.Function:
    fn, b = u.define(module, ENTRY, [u.PTR] * 4, ["inputs", "outputs", "weights", "arena"],
                     ret=u.I32)
    inputs, outputs, weights, arena = fn.args
    spaces = {
        "input": [u.load(b, inputs, u.i64(i), u.PTR, align=8) for i in range(n_inputs)],
        "output": [u.load(b, outputs, u.i64(j), u.PTR, align=8) for j in range(n_outputs)],
        "weights": weights,
        "arena": arena,
    }
    for ln in lowered:
        for call in ln.calls:
            kernel_fn = get_or_build(module, call.kernel, target)
            b.call(kernel_fn, [_arg(b, a, p, plan, spaces) for a, p in
                               zip(call.args, call.kernel.params, strict=True)])
    b.ret(ir.Constant(u.I32, 0))
    return fn


def _arg(b: ir.IRBuilder, a: object, param: str, plan: MemoryPlan, spaces: dict) -> ir.Value:
    if param == I64:
        return u.i64(int(a))
    if param == F32:
        return u.f32(float(a))
    assert param == PTR, param
    if isinstance(a, Buf):
        return _address(b, plan.location_of_value(a.value), a.offset, spaces)
    if isinstance(a, Scratch):
        return _address(b, plan.locations[plan.scratch_keys[id(a)]], 0, spaces)
    if isinstance(a, Const):
        return _address(b, plan.locations[plan.const_keys[id(a)]], 0, spaces)
    raise TypeError(f"cannot pass {a!r} as a pointer")


def _address(b: ir.IRBuilder, loc: Location, extra: int, spaces: dict) -> ir.Value:
    if loc.space in ("input", "output"):
        base, offset = spaces[loc.space][loc.index], extra
    else:
        base, offset = spaces[loc.space], loc.offset + extra
    if offset == 0:
        return base
    return b.gep(base, [u.i64(offset)], inbounds=True, source_etype=u.I8)
