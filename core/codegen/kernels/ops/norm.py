"""Normalizations: mean/variance ones (Layer-, Instance-, Group-,
MeanVarianceNormalization) in one kernel family, and LpNormalization.

normalize_kernel walks the tensor as rows; a row is the set of elements one
mean and variance are taken over, made of segments of contiguous elements:

    x[r * row_stride + s * seg_stride + m]    row r, segment s < segs, m < seg_len

Layer-, Instance- and GroupNormalization rows are one contiguous segment;
MeanVarianceNormalization over axes (0, 2, 3) of NCHW has one segment per image.
The statistics take two passes (the mean, then the squared deviations from
it), which stays accurate when the mean is large against the spread, unlike
E[x^2] - E[x]^2. What happens after normalizing is the kernel's `affine`:

- "elem": y = xhat * scale[m] + bias[m] along the segment (LayerNormalization);
- "block": the segment is `blocks` blocks of `inner` elements, and block k of row
  r uses channel c = (r * blocks + k) % chans: y = xhat * scale[c] + bias[c]
  (InstanceNormalization: one block per row; GroupNormalization: C/G blocks);
- "none": y = xhat.

Each row's mean and 1/sqrt(var + eps) are also stored (LayerNormalization's
optional outputs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import llvmlite.ir as ir

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn as M
from ..support.vloop import (
    define_kernel,
    entry_alloca,
    fold,
    nested_loops,
    reduce,
    tail_mask,
    vector_loop,
    vload,
    vstore,
)

AFFINES = ("elem", "block", "none")
_KINDS = {PTR: U.PTR, I64: U.I64, F32: U.F32}


def normalize_params(affine: str) -> list[tuple[str, str]]:
    """(name, kind) of normalize_kernel(affine)'s arguments, in order."""
    out = [("x", PTR), ("y", PTR), ("mean_out", PTR), ("rstd_out", PTR)]
    if affine != "none":
        out += [("scale", PTR), ("bias", PTR)]
    out += [(n, I64) for n in ("rows", "row_stride", "segs", "seg_stride", "seg_len")]
    if affine == "block":
        out += [(n, I64) for n in ("blocks", "inner", "chans")]
    return out + [("eps", F32)]


def normalize_kernel(affine: str) -> Kernel:
    assert affine in AFFINES
    name = f"normalize_{affine}_f32"
    params = normalize_params(affine)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [_KINDS[k] for _, k in params],
                              [n for n, _ in params])
        v = dict(zip([n for n, _ in params], fn.args, strict=True))
        count = b.sitofp(b.mul(v["segs"], v["seg_len"]), U.F32)
        with U.for_range(b, U.i64(0), v["rows"], name="r") as r:
            row = _Row(b, v, r, lanes)
            mean = b.fdiv(row.sum(b, lambda b, x, mask: x), count)
            vmean = U.splat(b, mean, lanes)

            def squared_deviation(b, x, mask):
                d = b.fsub(x, vmean)
                d = d if mask is None else b.select(mask, d, ir.Constant(d.type, None))
                return b.fmul(d, d)

            var = b.fdiv(row.sum(b, squared_deviation), count)
            rstd = b.fdiv(U.f32(1.0), M.sqrt_f32(b, b.fadd(var, v["eps"])))
            U.store(b, mean, v["mean_out"], r)
            U.store(b, rstd, v["rstd_out"], r)
            _write(b, affine, v, row, mean, rstd)
        b.ret_void()
        return fn

    return Kernel(name, tuple(k for _, k in params), build)


class _Row:
    """Loops over the segments of row r."""

    def __init__(self, b: ir.IRBuilder, v: dict[str, ir.Value], r: ir.Value, lanes: int):
        self.v, self.lanes, self.r = v, lanes, r
        self.base = b.mul(r, v["row_stride"])
        self.acc = entry_alloca(b, U.vec(U.F32, lanes), "acc")

    @contextlib.contextmanager
    def segment(self, b: ir.IRBuilder) -> Iterator[ir.Value]:
        """A loop over the segments; yields the offset of the segment's first element."""
        with U.for_range(b, U.i64(0), self.v["segs"], name="s") as s:
            yield b.add(self.base, b.mul(s, self.v["seg_stride"]))

    def sum(self, b: ir.IRBuilder, term) -> ir.Value:
        """Sum over the row of term(b, x vector, tail mask or None)."""
        vt = U.vec(U.F32, self.lanes)
        b.store(ir.Constant(vt, None), self.acc)
        with self.segment(b) as start:
            def body(b, i, count):
                x = vload(b, self.v["x"], b.add(start, i), self.lanes, count)
                mask = None if count is None else tail_mask(b, count, self.lanes)
                b.store(U.fadd(b, b.load(self.acc, typ=vt), term(b, x, mask)), self.acc)

            vector_loop(b, self.v["seg_len"], self.lanes, body)
        return reduce(b, "fadd", b.load(self.acc, typ=vt))


def _write(b: ir.IRBuilder, affine: str, v: dict[str, ir.Value], row: _Row, mean: ir.Value,
           rstd: ir.Value) -> None:
    """y = (x - mean) * rstd, then the affine step."""
    lanes = row.lanes
    vmean, vrstd = U.splat(b, mean, lanes), U.splat(b, rstd, lanes)
    with row.segment(b) as start:
        if affine == "block":
            _write_blocks(b, v, row, start, vmean, rstd)
        else:
            def body(b, i, count):
                at = b.add(start, i)
                xhat = b.fmul(b.fsub(vload(b, v["x"], at, lanes, count), vmean), vrstd)
                if affine == "elem":
                    scale = vload(b, v["scale"], i, lanes, count)
                    xhat = M.fmuladd(b, xhat, scale, vload(b, v["bias"], i, lanes, count))
                vstore(b, xhat, v["y"], at, count)

            vector_loop(b, v["seg_len"], lanes, body)


def _write_blocks(b: ir.IRBuilder, v: dict[str, ir.Value], row: _Row, start: ir.Value,
                  vmean: ir.Value, rstd: ir.Value) -> None:
    """y = (x - mean) * (rstd * scale[c]) + bias[c], one channel c per block."""
    lanes = row.lanes
    with U.for_range(b, U.i64(0), v["blocks"], name="k") as k:
        c = b.srem(b.add(b.mul(row.r, v["blocks"]), k), v["chans"])
        a = U.splat(b, b.fmul(rstd, U.load(b, v["scale"], c)), lanes)
        shift = U.splat(b, U.load(b, v["bias"], c), lanes)
        block = b.add(start, b.mul(k, v["inner"]))

        def body(b, i, count):
            at = b.add(block, i)
            d = b.fsub(vload(b, v["x"], at, lanes, count), vmean)
            vstore(b, M.fmuladd(b, d, a, shift), v["y"], at, count)

        vector_loop(b, v["inner"], lanes, body)


# ---------------------------------------------------------------------------
# LpNormalization


def lp_norm_kernel(p: int, strided: bool) -> Kernel:
    """y = x / ||x||_p along the middle axis of [outer, n, inner] (0 where the norm is 0).

    Rows (strided=False, inner == 1): (x, y, outer, n), vectors along each row.
    Strided: (x, y, outer, n, inner), vectors across inner, norms kept in registers.
    """
    assert p in (1, 2)
    name = f"lp{p}_norm_{'strided' if strided else 'rows'}_f32"
    params = (PTR, PTR, I64, I64) + ((I64,) if strided else ())

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [_KINDS[k] for k in params],
                              ["x", "y", "outer", "n", "inner"][:len(params)])
        if strided:
            _lp_strided(b, p, lanes, *fn.args)
        else:
            _lp_rows(b, p, lanes, *fn.args)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _norm_term(b: ir.IRBuilder, p: int, x: ir.Value) -> ir.Value:
    return M.fabs(b, x) if p == 1 else b.fmul(x, x)


def _inverse_norm(b: ir.IRBuilder, p: int, total: ir.Value) -> ir.Value:
    norm = total if p == 1 else M.sqrt_f32(b, total)
    t = norm.type
    zero = ir.Constant(t, None)
    inv = b.fdiv(ir.Constant(t, [1.0] * t.count) if isinstance(t, ir.VectorType)
                 else U.f32(1.0), norm)
    return b.select(b.fcmp_ordered("==", norm, zero), zero, inv)


def _lp_rows(b: ir.IRBuilder, p: int, lanes: int, x, y, outer, n) -> None:
    vt = U.vec(U.F32, lanes)
    acc = entry_alloca(b, vt, "acc")
    with U.for_range(b, U.i64(0), outer, name="r") as r:
        base = b.mul(r, n)
        b.store(ir.Constant(vt, None), acc)

        def add(b, i, count):
            term = _norm_term(b, p, vload(b, x, b.add(base, i), lanes, count))
            b.store(U.fadd(b, b.load(acc, typ=vt), term), acc)

        vector_loop(b, n, lanes, add)
        inv = U.splat(b, _inverse_norm(b, p, reduce(b, "fadd", b.load(acc, typ=vt))), lanes)

        def scale(b, i, count):
            at = b.add(base, i)
            vstore(b, b.fmul(vload(b, x, at, lanes, count), inv), y, at, count)

        vector_loop(b, n, lanes, scale, name="w")


def _lp_strided(b: ir.IRBuilder, p: int, lanes: int, x, y, outer, n, inner) -> None:
    vt = U.vec(U.F32, lanes)
    with nested_loops(b, [outer], name="o") as (o,):
        base = b.mul(o, b.mul(n, inner))

        def column(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
            def at(b, k):
                return b.add(base, b.add(b.mul(k, inner), j))

            total = fold(b, n, ir.Constant(vt, None), lambda b, k, acc: U.fadd(
                b, acc, _norm_term(b, p, vload(b, x, at(b, k), lanes, count))))
            inv = _inverse_norm(b, p, total)
            with U.for_range(b, U.i64(0), n, name="k") as k:
                vstore(b, b.fmul(vload(b, x, at(b, k), lanes, count), inv), y, at(b, k), count)

        vector_loop(b, inner, lanes, column, name="j")
