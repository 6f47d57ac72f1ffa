"""MatMulNBits at accuracy_level 4: 4-bit weights against activations
quantized to int8 per block, with the target's u8 x s8 dot-product step (the
tensorizer's choice from the intrinsic YAML, e.g. VNNI's vpdpbusd):

    Y[m, n] = sum_b  sa[m, b] * sw[n, b] * (dot_b(qa[m], q[n]) - z[n, b] * sum_b(qa[m]))

with dot_b and sum_b over the k of block b.
The integer part is exact (int32); only the per-block scaling is in float.

Activations, as onnxruntime's MLAS CompInt8 path quantizes them (per row, per
block of the weight's block size): amax = max |a| over the block, scale
sa = amax / 127, a value is  qa = round_half_even(a * (127 / amax))  (0 when
amax is 0). The quantization runs once per call, before the columns are split
across threads, into the scratch: sa [M, kb] float, the block sums of qa [M, kb]
int32, qa [M, K] int8.

Weights are repacked at compile time (lower/matmul_nbits.py) so that one step
of the dot intrinsic (n lanes x k bytes) reads its B operand from one load:
columns in groups of n, per group and block, pairs of k-steps share n * k
bytes, step 2j in the low nibbles and 2j + 1 in the high ones:

    wq     [G][kb][steps / 2][n][k] nibble pairs   (the only copy of the weight)
    scales [G][kb][n] float32        zeros [G][kb][n] uint8 (when not uniform)

Rows are taken ROWS at a time, so each unpacked weight vector serves ROWS dot
steps (prefill); a decode step (M = 1) streams the weight once.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import GRAIN, define_range_fn, parallel_range, workers_for
from ..support.vloop import define_kernel, entry_alloca, reduce, vload, vstore
from .micro_step import MicroStep

ROWS = 4  # rows of A sharing each unpacked weight vector
QLANES = 16  # floats per vector while quantizing A
PARAMS = ("a", "wq", "scales", "zeros", "bias", "y", "qa", "m", "n", "k_blocks")


@dataclass(frozen=True)
class NBitsI8Spec:
    step: MicroStep  # u8 (weights, per lane) x s8 (activations, broadcast) -> i32
    block: int  # values per block: a multiple of 2 * step.k
    bias: bool
    zero: int | None  # the zero point of every block, or None: a table [G][kb][n]

    @property
    def name(self) -> str:
        zero = "zt" if self.zero is None else f"z{self.zero}"
        return (f"matmul_nbits_i8_{self.step.ident}_b{self.block}_{zero}"
                f"{'_bias' if self.bias else ''}")

    @property
    def pairs(self) -> int:
        return self.block // (2 * self.step.k)


def scratch_bytes(m, k: int, k_blocks: int):
    """sa and block sums (4 bytes each per block), then qa: M * (K + 8 kb)."""
    return m * (k + 8 * k_blocks)


def matmul_nbits_i8_kernel(spec: NBitsI8Spec) -> Kernel:
    """(a, wq, scales, zeros, bias, y, qa, m, n, k_blocks); columns split across
    threads by groups of step.n."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        types, names = [U.PTR] * 7 + [U.I64] * 3, list(PARAMS)
        fn, b = define_kernel(module, spec.name, types, names)
        range_fn, rb, v = define_range_fn(module, f"{spec.name}.range", types, names,
                                          noalias=True)
        _columns(rb, spec, v, v["begin"], v["end"])
        rb.ret_void()
        a, qa, m, n, k_blocks = fn.args[0], fn.args[6], fn.args[7], fn.args[8], fn.args[9]
        _quantize_rows(b, spec.block, a, qa, m, k_blocks)
        groups = b.sdiv(b.add(n, U.i64(spec.step.n - 1)), U.i64(spec.step.n))
        work = b.mul(b.mul(m, n), b.mul(k_blocks, U.i64(spec.block)))
        parallel_range(b, target.threads, range_fn, list(fn.args), groups,
                       workers_for(b, work, GRAIN, target.threads))
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 7 + (I64,) * 3, build)


# ---- activations -> int8 per block ----


def _quantize_rows(b: ir.IRBuilder, block: int, a: ir.Value, qa: ir.Value, m: ir.Value,
                   k_blocks: ir.Value) -> None:
    blocks = b.mul(m, k_blocks, name="blocks")  # a row's blocks follow its previous row's
    scales, sums = qa, U.gep(b, qa, blocks, U.I32)
    codes = U.gep(b, qa, b.mul(blocks, U.i64(2)), U.I32)
    with U.for_range(b, U.i64(0), blocks, name="qblk") as at:
        _quantize_block(b, block, U.gep(b, a, b.mul(at, U.i64(block))),
                        U.gep(b, codes, b.mul(at, U.i64(block)), U.I8),
                        U.gep(b, scales, at), U.gep(b, sums, at, U.I32))


def _quantize_block(b: ir.IRBuilder, block: int, src: ir.Value, dst: ir.Value,
                    scale_at: ir.Value, sum_at: ir.Value) -> None:
    fvec = U.vec(U.F32, QLANES)
    values = [U.load_vec(b, src, U.i64(j), QLANES) for j in range(0, block, QLANES)]
    fabs = U.intrinsic(b.module, f"llvm.fabs.v{QLANES}f32", fvec, [fvec])
    amax_v = b.call(fabs, [values[0]])
    for v in values[1:]:
        amax_v = U.fmax(b, amax_v, b.call(fabs, [v]))
    amax = reduce(b, "fmax", amax_v)
    # onnxruntime's rounding: 127 / amax in one division (not 1 / scale), half to even
    b.store(b.fdiv(amax, U.f32(127.0)), scale_at)
    nonzero = b.fcmp_ordered("!=", amax, U.f32(0.0))
    inverse = b.select(nonzero, b.fdiv(U.f32(127.0), amax), U.f32(0.0))
    roundeven = U.intrinsic(b.module, f"llvm.roundeven.v{QLANES}f32", fvec, [fvec])
    ivec = U.vec(U.I32, QLANES)
    total = ir.Constant(ivec, [0] * QLANES)
    for j, v in zip(range(0, block, QLANES), values, strict=True):
        q = b.fptosi(b.call(roundeven, [b.fmul(v, U.splat(b, inverse, QLANES))]), ivec)
        total = b.add(total, q)
        U.store_vec(b, b.trunc(q, U.vec(U.I8, QLANES)), dst, U.i64(j))
    add = U.intrinsic(b.module, f"llvm.vector.reduce.add.v{QLANES}i32", U.I32, [ivec])
    b.store(b.call(add, [total]), sum_at)


# ---- columns: groups of n lanes, ROWS rows at a time ----


def _columns(b: ir.IRBuilder, spec: NBitsI8Spec, v: dict, begin: ir.Value,
             end: ir.Value) -> None:
    m = v["m"]
    full = b.mul(b.sdiv(m, U.i64(ROWS)), U.i64(ROWS), name="full_rows")
    with U.for_range(b, begin, end, name="group") as g:
        with U.for_range(b, U.i64(0), full, step=ROWS, name="row4") as r0:
            _row_tile(b, spec, v, g, [b.add(r0, U.i64(r)) for r in range(ROWS)], "r4")
        with U.for_range(b, full, m, name="row1") as r:
            _row_tile(b, spec, v, g, [r], "r1")


def _row_tile(b: ir.IRBuilder, spec: NBitsI8Spec, v: dict, g: ir.Value,
              rows: list[ir.Value], tag: str) -> None:
    """Group g's n columns for `rows`: per block, int32 dot steps (each weight
    vector unpacked once for all rows), then the block's scaling in float."""
    n = spec.step.n
    fvec = U.vec(U.F32, n)
    k_blocks = v["k_blocks"]
    facc = [entry_alloca(b, fvec, f"{tag}.f{r}") for r in range(len(rows))]
    for t in facc:
        b.store(ir.Constant(fvec, [0.0] * n), t)
    with U.for_range(b, U.i64(0), k_blocks, name=f"{tag}.blk") as blk:
        at = b.add(b.mul(g, k_blocks), blk, name="gblk")  # [G][kb] entry
        dots = _block_dots(b, spec, v, at, blk, rows)
        zeros = _zeros(b, spec, v["zeros"], at)
        scales = U.load_vec(b, v["scales"], b.mul(at, U.i64(n)), n)
        for r, row in enumerate(rows):
            a_at = b.add(b.mul(row, k_blocks), blk)
            a_sum = U.splat(b, U.load(b, _sums(b, v), a_at, U.I32), n)
            exact = b.sub(dots[r], b.mul(zeros, a_sum))
            scale = U.fmul(b, scales, U.splat(b, U.load(b, v["qa"], a_at), n))
            b.store(U.fma(b, b.sitofp(exact, fvec), scale, b.load(facc[r], typ=fvec)), facc[r])
    _store_rows(b, spec, v, g, rows, [b.load(t, typ=fvec) for t in facc])


def _block_dots(b: ir.IRBuilder, spec: NBitsI8Spec, v: dict, at: ir.Value, blk: ir.Value,
                rows: list[ir.Value]) -> list[ir.Value]:
    """sum over the block of qa[row, k] * q[n, k], int32 lanes per row."""
    step = spec.step
    width = step.n * step.k  # bytes of one step's B operand
    vt = U.vec(U.I8, width)
    low = ir.Constant(vt, [0x0F] * width)
    four = ir.Constant(vt, [4] * width)
    k = b.mul(v["k_blocks"], U.i64(spec.block), name="k")
    codes = U.gep(b, _sums(b, v), b.mul(v["m"], v["k_blocks"]), U.I32)
    a_rows = [U.gep(b, codes, b.add(b.mul(row, k), b.mul(blk, U.i64(spec.block))), U.I8)
              for row in rows]
    src = U.gep(b, v["wq"], b.mul(at, U.i64(spec.block * step.n // 2)), U.I8)
    accs = [ir.Constant(step.acc_type, None) for _ in rows]
    for j in range(spec.pairs):
        packed = U.load_vec(b, src, U.i64(j * width), width, U.I8)
        halves = (b.and_(packed, low), b.lshr(packed, four))
        for half, weights in enumerate(halves):
            bv = step.to_operand(b, weights, "B")
            offset = U.i64((2 * j + half) * step.k)
            for r, a_row in enumerate(a_rows):
                av = step.broadcast_a(b, U.gep(b, a_row, offset, U.I8))
                accs[r] = step.call(b, accs[r], av, bv)
    return [step.acc_fixed(b, acc) for acc in accs]


def _sums(b: ir.IRBuilder, v: dict) -> ir.Value:
    """The block sums of qa: after the scales, M * kb floats."""
    return U.gep(b, v["qa"], b.mul(v["m"], v["k_blocks"]), U.F32)


def _zeros(b: ir.IRBuilder, spec: NBitsI8Spec, zeros: ir.Value, at: ir.Value) -> ir.Value:
    n = spec.step.n
    if spec.zero is not None:
        return ir.Constant(U.vec(U.I32, n), [spec.zero] * n)
    codes = U.load_vec(b, zeros, b.mul(at, U.i64(n)), n, U.I8)
    return b.zext(codes, U.vec(U.I32, n))


def _store_rows(b: ir.IRBuilder, spec: NBitsI8Spec, v: dict, g: ir.Value,
                rows: list[ir.Value], totals: list[ir.Value]) -> None:
    """y[row, g*n ...] for the group's real columns (the last group may be short)."""
    n, cols = spec.step.n, v["n"]
    col0 = b.mul(g, U.i64(n))
    left = b.sub(cols, col0)
    count = b.select(b.icmp_signed("<", left, U.i64(n)), left, U.i64(n))
    full = b.icmp_signed("==", count, U.i64(n))
    bias = vload(b, v["bias"], col0, n, count) if spec.bias else None
    for row, total in zip(rows, totals, strict=True):
        value = U.fadd(b, total, bias) if bias is not None else total
        at = b.add(b.mul(row, cols), col0)
        with b.if_else(full) as (whole, part):
            with whole:
                U.store_vec(b, value, v["y"], at)
            with part:
                vstore(b, value, v["y"], at, count)

