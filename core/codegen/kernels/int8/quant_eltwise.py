"""Elementwise and pooling kernels on quantized (8-bit) tensors, each with the
float32 arithmetic onnxruntime uses for it, operation for operation:

add, "mlas" (QLinearAdd, MlasQLinearAddKernel):
    vector + vector   y = rnd(fma(a, r_ac, fma(b, r_bc, fixed)))
    vector + scalar   y = rnd(fma(a, r_ac, fixed + b * r_bc))     (and mirrored)
    with r_ac = a_scale / c_scale, r_bc = b_scale / c_scale and
    fixed = c_zp - fma(r_ac, a_zp, r_bc * b_zp), all computed at compile time;
add, "float" (an Add onnxruntime leaves between DequantizeLinear and QuantizeLinear):
    y = quantize((float(a - a_zp) * a_scale + float(b - b_zp) * b_scale) / c_scale)
global average (QLinearGlobalAveragePool, MlasQLinearGlobalAveragePool):
    y = rnd(float(sum(x) - x_zp * count) * scale),  scale = x_scale / (y_scale * count)

rnd is MLAS's saturate(round_half_even(v)) (+ zero point where it is not folded
in). `flip` kernels read and write int8 data as uint8 (x ^ 0x80 = x + 128): what
onnxruntime computes after converting an int8 QDQ graph to uint8.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_rows
from ..support.dtype_ir import SIGNED, storage_type
from ..support.vloop import define_kernel, entry_alloca, vector_loop
from .quant import dequantize, load_int_as_i32, round_saturate, store_i32_as

MAX_OUTER_DIMS = 5  # outer loops of the broadcast plan, padded in front with count-1 dims
PLAN_COLUMNS = 4  # per outer dim: count, a stride, b stride, y stride (elements)
ADD_FORMULAS = ("mlas", "float")

# (a, b, y, plan, n) + per formula (f32 scales, i64 zero points):
#   mlas:  r_ac, r_bc, fixed (the output zero point is inside fixed)
#   float: a_scale, a_zp, b_scale, b_zp, c_scale, c_zp
_FORMULA_PARAMS = {"mlas": ["r_ac", "r_bc", "fixed"],
                   "float": ["sa", "za", "sb", "zb", "sc", "zc"]}


def qadd_kernel(formula: str, dt: DType, kinds: str, flip: bool = False) -> Kernel:
    """y = a + b over a broadcast plan (elementwise.py's format), 8-bit data of dt."""
    assert formula in ADD_FORMULAS and len(kinds) == 2 and set(kinds) <= {"v", "s"}
    name = f"qadd_{formula}_{dt.short}{'_flip' if flip else ''}_{kinds}"
    extra = _FORMULA_PARAMS[formula]
    ftypes = [U.I64 if p.startswith("z") else U.F32 for p in extra]
    params = (PTR,) * 4 + (I64,) + tuple(I64 if t == U.I64 else F32 for t in ftypes)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        names = ["a", "b", "y", "plan", "n", *extra]
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] + ftypes, names)

        def row(b: ir.IRBuilder, values: list[ir.Value], idx: list[ir.Value], start: ir.Value,
                count: ir.Value) -> None:
            v = dict(zip(names, values, strict=True))
            offs = [_outer_offset(b, v["plan"], idx, col) for col in (1, 2, 3)]
            # vector operands and y start at this piece; a scalar operand stays put
            offs = [b.add(o, start) if k == 2 or kinds[k] == "v" else o
                    for k, o in enumerate(offs)]
            _QAdd(formula, dt, kinds, flip, target.f32_lanes, v).emit(b, offs, count)

        parallel_rows(b, target.threads, name, list(fn.args), _plan_counts, fn.args[4], row)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _plan_counts(b: ir.IRBuilder, args: list[ir.Value]) -> list[ir.Value]:
    return [U.load(b, args[3], U.i64(d * PLAN_COLUMNS), U.I64) for d in range(MAX_OUTER_DIMS)]


def _outer_offset(b: ir.IRBuilder, plan: ir.Value, idx: list[ir.Value], col: int) -> ir.Value:
    off = U.i64(0)
    for d, i in enumerate(idx):
        off = b.add(off, b.mul(i, U.load(b, plan, U.i64(d * PLAN_COLUMNS + col), U.I64)))
    return off


class _QAdd:
    """The inner vector loop of one outer position."""

    def __init__(self, formula: str, dt: DType, kinds: str, flip: bool, lanes: int,
                 v: dict[str, ir.Value]):
        self.formula, self.kinds, self.flip, self.lanes, self.v = formula, kinds, flip, lanes, v
        self.dt = DType.uint8 if flip else dt  # the dtype the arithmetic sees
        self.store_dt = dt

    def splat(self, b: ir.IRBuilder, name: str) -> ir.Value:
        x = self.v[name]
        x = b.trunc(x, U.I32) if x.type == U.I64 else x
        return U.splat(b, x, self.lanes)

    def load(self, b: ir.IRBuilder, ptr: ir.Value, at: ir.Value, count: ir.Value | None
             ) -> ir.Value:
        x = load_int_as_i32(b, ptr, at, self.lanes, count, self.store_dt)
        return b.add(x, self.splat_const(b, 128)) if self.flip else x

    def load_scalar(self, b: ir.IRBuilder, ptr: ir.Value, at: ir.Value) -> ir.Value:
        x = U.load(b, ptr, at, storage_type(self.store_dt))
        x = b.sext(x, U.I32) if self.store_dt in SIGNED else b.zext(x, U.I32)
        x = b.add(x, ir.Constant(U.I32, 128)) if self.flip else x
        return U.splat(b, x, self.lanes)

    def splat_const(self, b: ir.IRBuilder, c: int) -> ir.Value:
        return ir.Constant(U.vec(U.I32, self.lanes), [c] * self.lanes)

    def emit(self, b: ir.IRBuilder, offs: list[ir.Value], n: ir.Value) -> None:
        """n elements from element offsets offs (a, b, y)."""
        oa, ob, oy = offs
        pa, pb, py = self.v["a"], self.v["b"], self.v["y"]
        # scalar operands are loaded once, before the inner loop
        sa = self.load_scalar(b, pa, oa) if self.kinds[0] == "s" else None
        sb = self.load_scalar(b, pb, ob) if self.kinds[1] == "s" else None
        fixed = self.fixed_part(b, sa, sb) if self.formula == "mlas" else None

        def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            a = sa if sa is not None else self.load(b, pa, b.add(oa, i), count)
            c = sb if sb is not None else self.load(b, pb, b.add(ob, i), count)
            q = self.mlas(b, a, c, fixed) if fixed is not None else self.float_add(b, a, c)
            if self.flip:
                q = b.sub(q, self.splat_const(b, 128))
            store_i32_as(b, q, py, b.add(oy, i), count, self.store_dt)

        vector_loop(b, n, self.lanes, body)

    def fixed_part(self, b: ir.IRBuilder, sa: ir.Value | None, sb: ir.Value | None
                   ) -> ir.Value:
        """MLAS folds a scalar operand into the fixed part: fixed + s * r (mul, add)."""
        fixed = U.splat(b, self.v["fixed"], self.lanes)
        for s, r in ((sa, "r_ac"), (sb, "r_bc")):
            if s is not None:
                prod = b.fmul(b.sitofp(s, fixed.type), U.splat(b, self.v[r], self.lanes))
                fixed = b.fadd(fixed, prod)
        return fixed

    def mlas(self, b: ir.IRBuilder, a: ir.Value, c: ir.Value, fixed: ir.Value) -> ir.Value:
        ft = fixed.type
        acc = fixed
        if self.kinds[1] == "v":
            acc = U.fma(b, b.sitofp(c, ft), U.splat(b, self.v["r_bc"], self.lanes), acc)
        if self.kinds[0] == "v":
            acc = U.fma(b, b.sitofp(a, ft), U.splat(b, self.v["r_ac"], self.lanes), acc)
        return round_saturate(b, acc, self.splat_const(b, 0), self.dt)

    def float_add(self, b: ir.IRBuilder, a: ir.Value, c: ir.Value) -> ir.Value:
        s = lambda n: U.splat(b, self.v[n], self.lanes)  # noqa: E731
        total = b.fadd(dequantize(b, a, self.splat(b, "za"), s("sa")),
                       dequantize(b, c, self.splat(b, "zb"), s("sb")))
        return round_saturate(b, b.fdiv(total, s("sc")), self.splat(b, "zc"), self.dt)


def global_average_kernel(src: DType, out: DType) -> Kernel:
    """y[p] = rnd(float(sum_i x[p, i] + bias) * scale) + zp for each plane p:
    (x, y, planes, count, bias, scale, zp); bias = -x_zp * count."""
    name = f"qgap_{src.short}_to_{out.short}"
    params = (PTR, PTR, I64, I64, I64, F32, I64)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.I64, U.I64, U.F32, U.I64],
                              ["x", "y", "planes", "count", "bias", "scale", "zp"])
        x, y, planes, count, bias, scale, zp = fn.args
        with U.for_range(b, 0, planes, name="p") as p:
            base = b.mul(p, count)
            total = _plane_sum(b, x, base, count, lanes, src)
            acc = b.add(total, b.trunc(bias, U.I32))
            q = round_saturate(b, b.fmul(b.sitofp(acc, U.F32), scale), b.trunc(zp, U.I32), out)
            U.store(b, b.trunc(q, U.I8), y, p)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _plane_sum(b: ir.IRBuilder, x: ir.Value, base: ir.Value, count: ir.Value, lanes: int,
               src: DType) -> ir.Value:
    """sum of count integers at x[base:], as i32 (exact: planes hold < 2^23 bytes)."""
    vt = U.vec(U.I32, lanes)
    slot = entry_alloca(b, vt, "sum")  # mem2reg makes this the loop's accumulator
    b.store(ir.Constant(vt, [0] * lanes), slot)

    def body(b: ir.IRBuilder, i: ir.Value, n: ir.Value | None) -> None:
        v = load_int_as_i32(b, x, b.add(base, i), lanes, n, src)
        b.store(b.add(b.load(slot), v), slot)

    vector_loop(b, count, lanes, body)
    fn = U.intrinsic(b.module, f"llvm.vector.reduce.add.v{lanes}i32", U.I32, [vt])
    return b.call(fn, [b.load(slot)])
