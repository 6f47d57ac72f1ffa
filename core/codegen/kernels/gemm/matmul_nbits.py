"""Weight-only 4- and 8-bit GEMV/GEMM (com.microsoft MatMulNBits):

    Y[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]),  W[n, k] = (q[n, k] - z[n, b]) * s[n, b]

with b = k / block. The packed weight is read once per call and never
expanded: 16 values at a time are unpacked in registers (8 bytes of nibbles
split into low and high halves and interleaved back into k order, or 16 bytes
of 8-bit values), so the int4 blocks stay the only copy of the weight and a
decode step streams 0.5 byte per weight.

- One row of A (decode): per column, per block, s * sum((q - z) * a) with the
  accumulators in registers (two, for even and odd blocks).
- Several rows (prefill): TILE columns at a time are dequantized as
  onnxruntime does ((q - z) * s in float32) into a [TILE, K] buffer, then each
  row of A is dotted with all of them, TILE accumulators in registers (the
  buffer is TILE * K floats per thread, not a copy of the weight).

Columns are split across threads. K must be a multiple of the block size (the
lowering checks it); block is a multiple of 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import GRAIN, define_range_fn, parallel_range, workers_for
from ..support.vloop import define_kernel, entry_alloca, reduce

LANES = 16
TILE = 8  # columns sharing one pass over A in the several-rows path
PARAMS = ("a", "q", "scales", "zeros", "bias", "y", "wbuf", "m", "n", "k_blocks")


@dataclass(frozen=True)
class NBitsSpec:
    bits: int  # 4 or 8
    block: int  # values per block, a multiple of 16
    bias: bool
    int_zero: bool = True  # zero points are whole numbers (uint8 or the default)

    @property
    def name(self) -> str:
        zero = "" if self.int_zero else "_fz"
        return f"matmul_nbits_q{self.bits}_b{self.block}{zero}{'_bias' if self.bias else ''}"


def matmul_nbits_kernel(spec: NBitsSpec) -> Kernel:
    """(a, q, scales, zeros, bias, y, wbuf, m, n, k_blocks): wbuf is scratch of
    TILE * K floats per thread; scales are float
    [n, k_blocks], zeros uint8 [n, k_blocks] (int_zero) or float. The columns n
    are split across the threads."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        types, names = [U.PTR] * 7 + [U.I64] * 3, list(PARAMS)
        fn, b = define_kernel(module, spec.name, types, names)
        range_fn, rb, v = define_range_fn(module, f"{spec.name}.range", types, names,
                                          noalias=True)
        _emit(rb, spec, [v[name] for name in names], v["begin"], v["end"], v["worker"])
        rb.ret_void()
        m, n, k_blocks = fn.args[7:]
        work = b.mul(b.mul(m, n), b.mul(k_blocks, U.i64(spec.block)))  # multiply-adds
        parallel_range(b, target.threads, range_fn, list(fn.args), n,
                       workers_for(b, work, GRAIN, target.threads))
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 7 + (I64,) * 3, build)


def _emit(b: ir.IRBuilder, spec: NBitsSpec, args, begin: ir.Value, end: ir.Value,
          worker: ir.Value) -> None:
    """Columns [begin, end), with this worker's slice of the scratch."""
    a, q, scales, zeros, bias, y, wbuf, m, n, k_blocks = args
    wbuf = U.gep(b, wbuf, b.mul(worker, b.mul(k_blocks, U.i64(spec.block * TILE))))
    with b.if_else(b.icmp_signed("==", m, U.i64(1))) as (one_row, rows):
        with one_row:
            with U.for_range(b, begin, end, name="col") as col:
                total = _gemv_column(b, spec, args, col)
                if spec.bias:
                    total = b.fadd(total, U.load(b, bias, col))
                U.store(b, total, y, col)
        with rows:
            tiles = b.sdiv(b.add(b.sub(end, begin), U.i64(TILE - 1)), U.i64(TILE))
            with U.for_range(b, U.i64(0), tiles, name="tile") as tile:
                col0 = b.add(begin, b.mul(tile, U.i64(TILE)))
                left = b.sub(end, col0)
                width = b.select(b.icmp_signed("<", left, U.i64(TILE)), left, U.i64(TILE))
                _gemm_tile(b, spec, args, col0, width, wbuf)


def _dequantized(b: ir.IRBuilder, spec: NBitsSpec, args, at: ir.Value) -> list[ir.Value]:
    """The block `at` (= col * k_blocks + blk) as float vectors of 16: (q - z) * s."""
    q, scales, zeros = args[1], args[2], args[3]
    scale = U.splat(b, U.load(b, scales, at), LANES)
    zero = U.splat(b, _zero(b, spec, zeros, at), LANES)
    src = b.mul(at, U.i64(spec.block * spec.bits // 8), name="src")
    out = []
    for step in range(spec.block // LANES):
        codes = _unpack16(b, spec.bits, q, b.add(src, U.i64(step * LANES * spec.bits // 8)))
        out.append(U.fmul(b, b.fsub(b.uitofp(codes, U.vec(U.F32, LANES)), zero), scale))
    return out


def _gemv_column(b: ir.IRBuilder, spec: NBitsSpec, args, col: ir.Value) -> ir.Value:
    """One row of A (a decode step): sum over blocks of s * sum((q - z) * a), so
    each 16 values cost a conversion and one FMA (the scale is applied once per
    block). With whole zero points, q - z is taken on the 4-bit codes as bytes
    (exact). Accumulators stay in registers; even and odd blocks add into two,
    so one block's FMA does not wait for the previous block's."""
    k_blocks = args[9]
    fvec = U.vec(U.F32, LANES)
    zero_vec = ir.Constant(fvec, [0.0] * LANES)
    totals = [entry_alloca(b, fvec, f"acc{c}") for c in range(2)]
    for t in totals:
        b.store(zero_vec, t)
    pairs = b.sdiv(k_blocks, U.i64(2))
    with U.for_range(b, U.i64(0), pairs, name="pair") as pair:
        for c, t in enumerate(totals):
            _gemv_block(b, spec, args, col, b.add(b.mul(pair, U.i64(2)), U.i64(c)), t)
    with b.if_then(b.icmp_signed("!=", b.mul(pairs, U.i64(2)), k_blocks)):
        _gemv_block(b, spec, args, col, b.sub(k_blocks, U.i64(1)), totals[0])
    both = U.fadd(b, b.load(totals[0], typ=fvec), b.load(totals[1], typ=fvec))
    return reduce(b, "fadd", both)


def _gemv_block(b: ir.IRBuilder, spec: NBitsSpec, args, col: ir.Value, blk: ir.Value,
                total: ir.Value) -> None:
    a, q, scales, zeros, k_blocks = args[0], args[1], args[2], args[3], args[9]
    fvec = U.vec(U.F32, LANES)
    at = b.add(b.mul(col, k_blocks), blk, name="at")
    zero = _zero(b, spec, zeros, at)
    zero_codes = U.splat(b, b.trunc(b.fptoui(zero, U.I32), U.I8), LANES) \
        if spec.int_zero and spec.bits == 4 else None
    src = b.mul(at, U.i64(spec.block * spec.bits // 8), name="src")
    k0 = b.mul(blk, U.i64(spec.block))
    block_sum = ir.Constant(fvec, [0.0] * LANES)
    for step in range(spec.block // LANES):
        codes = _unpack16(b, spec.bits, q, b.add(src, U.i64(step * LANES * spec.bits // 8)))
        if zero_codes is not None:
            centered = b.sitofp(b.sub(codes, zero_codes), fvec)
        else:
            centered = b.fsub(b.uitofp(codes, fvec), U.splat(b, zero, LANES))
        x = U.load_vec(b, a, b.add(k0, U.i64(step * LANES)), LANES)
        block_sum = U.fma(b, centered, x, block_sum)
    scale = U.splat(b, U.load(b, scales, at), LANES)
    b.store(U.fma(b, scale, block_sum, b.load(total, typ=fvec)), total)


def _zero(b: ir.IRBuilder, spec: NBitsSpec, zeros: ir.Value, at: ir.Value) -> ir.Value:
    """The zero point of block `at` as a float (stored as a byte when whole)."""
    if spec.int_zero:
        return b.uitofp(U.load(b, zeros, at, U.I8), U.F32)
    return U.load(b, zeros, at)


def _gemm_tile(b: ir.IRBuilder, spec: NBitsSpec, args, col0: ir.Value, width: ir.Value,
               wbuf: ir.Value) -> None:
    """Several rows of A, `width` (<= TILE) columns from col0: the columns are
    dequantized once, as onnxruntime does ((q - z) * s in float32), into wbuf
    [TILE, K] (zeros past `width`); then rows of A, two at a time, are dotted
    with all TILE columns at once (_tile_rows)."""
    m, k_blocks = args[7], args[9]
    k = b.mul(k_blocks, U.i64(spec.block), name="k")
    fvec = U.vec(U.F32, LANES)
    zero_vec = ir.Constant(fvec, [0.0] * LANES)
    with U.for_range(b, U.i64(0), U.i64(TILE), name="wc") as c:
        row_at = b.mul(c, k)
        with b.if_else(b.icmp_signed("<", c, width)) as (real, padding):
            with real:
                with U.for_range(b, U.i64(0), k_blocks, name="blk") as blk:
                    at = b.add(b.mul(b.add(col0, c), k_blocks), blk)
                    first = b.add(row_at, b.mul(blk, U.i64(spec.block)))
                    for step, w in enumerate(_dequantized(b, spec, args, at)):
                        U.store_vec(b, w, wbuf, b.add(first, U.i64(step * LANES)))
            with padding:
                with U.for_range(b, U.i64(0), k, step=LANES, name="pad") as kk:
                    U.store_vec(b, zero_vec, wbuf, b.add(row_at, kk))
    pairs = b.sdiv(m, U.i64(2))
    with U.for_range(b, U.i64(0), pairs, name="pair") as pair:
        row = b.mul(pair, U.i64(2))
        _tile_rows(b, spec, args, col0, width, wbuf, [row, b.add(row, U.i64(1))], "two")
    with b.if_then(b.icmp_signed("!=", b.mul(pairs, U.i64(2)), m)):
        _tile_rows(b, spec, args, col0, width, wbuf, [b.sub(m, U.i64(1))], "one")


def _tile_rows(b: ir.IRBuilder, spec: NBitsSpec, args, col0: ir.Value, width: ir.Value,
               wbuf: ir.Value, rows: list[ir.Value], tag: str) -> None:
    """Rows of A (one or two) against the TILE columns in wbuf: TILE accumulators
    per row in registers; with two rows each load of wbuf serves two FMAs."""
    a, y, n, k_blocks = args[0], args[5], args[8], args[9]
    k = b.mul(k_blocks, U.i64(spec.block))
    fvec = U.vec(U.F32, LANES)
    zero_vec = ir.Constant(fvec, [0.0] * LANES)
    totals = [[entry_alloca(b, fvec, f"{tag}{r}_{c}") for c in range(TILE)] for r in rows]
    for t in (t for per_row in totals for t in per_row):
        b.store(zero_vec, t)
    with U.for_range(b, U.i64(0), k, step=LANES, name=f"kk_{tag}") as kk:
        xs = [U.load_vec(b, a, b.add(b.mul(row, k), kk), LANES) for row in rows]
        for c in range(TILE):
            w = U.load_vec(b, wbuf, b.add(b.mul(U.i64(c), k), kk), LANES)
            for x, per_row in zip(xs, totals, strict=True):
                b.store(U.fma(b, w, x, b.load(per_row[c], typ=fvec)), per_row[c])
    for row, per_row in zip(rows, totals, strict=True):
        for c, t in enumerate(per_row):
            with b.if_then(b.icmp_signed("<", U.i64(c), width)):
                total = reduce(b, "fadd", b.load(t, typ=fvec))
                col = b.add(col0, U.i64(c))
                if spec.bias:
                    total = b.fadd(total, U.load(b, args[4], col))
                U.store(b, total, y, b.add(b.mul(row, n), col))


def _unpack16(b: ir.IRBuilder, bits: int, q: ir.Value, byte: ir.Value) -> ir.Value:
    """<16 x i8> codes of 16 consecutive k starting at packed byte `byte`."""
    if bits == 8:
        return U.load_vec(b, q, byte, LANES, U.I8)
    packed = U.load_vec(b, q, byte, LANES // 2, U.I8)
    low = b.and_(packed, ir.Constant(U.vec(U.I8, LANES // 2), [0x0F] * (LANES // 2)))
    high = b.lshr(packed, ir.Constant(U.vec(U.I8, LANES // 2), [4] * (LANES // 2)))
    order = [i // 2 + (LANES // 2) * (i % 2) for i in range(LANES)]  # low0 high0 low1 ...
    return b.shuffle_vector(low, high, ir.Constant(U.vec(U.I32, LANES), order))
