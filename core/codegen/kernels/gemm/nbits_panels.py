"""4- and 8-bit weight-only MatMulNBits on weights repacked into column panels
(lower/matmul_nbits_panels.py): the fp32 GEMM's B panels, in nibbles.

Layout, for panels of W columns (W = the GEMM's NR, a multiple of the chunk):

    q       uint8 [panels][K / per_byte][W]  per_byte k values of one column per
            byte, lowest bits first: byte (p, j, c) holds column p*W + c at
            k = 2j (low nibble) and 2j + 1 (high nibble) for 4 bits
    scales  float [panels][k_blocks][W]
    zeros   uint8 [panels][k_blocks][W]      whole zero points

So one load gives a row of W columns at two k: no shuffles, no transposes.
- One row of A (decode, `_gemv`): per panel, per block, accumulators of W
  columns add codes times a broadcast a[k]; the scale is applied once per block.
- Several rows (prefill): the fp32 GEMM of gemm.py with B source "nbits":
  each KC x NC block of B is dequantized ((q - z) * s in float32, as
  onnxruntime's float path does) straight into the micro-kernel's panels
  (`dequantize_panels`), then the register-tiled micro-kernel runs on it.
The int4 codes stay the only copy of the weight either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...kernel import get_or_build
from ...parallel import GRAIN, define_range_fn, parallel_range, workers_for
from ..support.vloop import define_kernel, entry_alloca

PARAMS = ("a", "q", "scales", "zeros", "bias", "y", "scratch", "m", "n", "k", "kc", "mc", "nc")


@dataclass(frozen=True)
class PanelSpec:
    bits: int  # 4 or 8
    block: int  # k values per quantization block
    width: int  # W, columns per panel (the GEMM's NR)

    @property
    def per_byte(self) -> int:
        return 8 // self.bits

    @property
    def chunk(self) -> int:
        """Columns per vector: 16 bytes of codes widen to 16 floats."""
        return 16 if self.width % 16 == 0 else self.width

    @property
    def tag(self) -> str:
        return f"q{self.bits}_b{self.block}_w{self.width}"


def matmul_nbits_panels_kernel(spec: PanelSpec, gemm, bias: bool) -> Kernel:
    """(a, q, scales, zeros, bias, y, scratch, m, n, k, kc, mc, nc): one row of A
    runs the panel GEMV (columns split across threads), more run `gemm` (a
    GemmSpec with b_src "nbits" and this spec) with the GEMM's scratch."""
    threads = f"_t{gemm.threads}" if gemm.threads > 1 else ""
    name = (f"matmul_nbits_{spec.tag}{'_bias' if bias else ''}_panels_"
            f"{gemm.mr}x{gemm.nv}v{gemm.lanes}{threads}")

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        types = [U.PTR] * 7 + [U.I64] * 6
        fn, b = define_kernel(module, name, types, list(PARAMS))
        v = dict(zip(PARAMS, fn.args, strict=True))
        with b.if_else(b.icmp_signed("==", v["m"], U.i64(1))) as (one_row, rows):
            with one_row:
                _parallel_gemv(b, module, target, spec, bias, name, fn.args)
            with rows:
                b.call(get_or_build(module, gemm.kernel(), target), _gemm_args(gemm, v, bias))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 7 + (I64,) * 6, build)


def _gemm_args(gemm, v: dict[str, ir.Value], bias: bool) -> list[ir.Value]:
    zero = U.i64(0)
    values = dict(a=v["a"], b=v["q"], c=v["y"], scratch=v["scratch"], M=v["m"], N=v["n"],
                  K=v["k"], ldc=v["n"], kc=v["kc"], mc=v["mc"], nc=v["nc"], batch=U.i64(1),
                  a_bstride=zero, b_bstride=zero, c_bstride=zero, sam=v["k"], sak=U.i64(1),
                  bscales=v["scales"], bzeros=v["zeros"])
    if bias:
        values.update(bias=v["bias"], ldbias=zero, bias_bstride=zero)
    return list(gemm.args(values))


def _parallel_gemv(b: ir.IRBuilder, module: ir.Module, target: CpuTarget, spec: PanelSpec,
                   bias: bool, name: str, args) -> None:
    types = [a.type for a in args]
    range_fn, rb, v = define_range_fn(module, f"{name}.gemv", types, list(PARAMS), noalias=True)
    with U.for_range(rb, v["begin"], v["end"], name="panel") as panel:
        _gemv_panel(rb, spec, bias, v, panel)
    rb.ret_void()
    n, k = args[8], args[9]
    panels = b.sdiv(b.add(n, U.i64(spec.width - 1)), U.i64(spec.width))
    work = b.mul(n, k)  # multiply-adds
    parallel_range(b, target.threads, range_fn, list(args), panels,
                   workers_for(b, work, GRAIN, target.threads))


def _gemv_panel(b: ir.IRBuilder, spec: PanelSpec, bias: bool, v: dict[str, ir.Value],
                panel: ir.Value) -> None:
    """y[panel's columns] = sum over blocks of s * sum_k (q - z) * a[k]; two
    accumulators per chunk (even and odd k) so FMAs do not wait on each other."""
    chunks, ch = spec.width // spec.chunk, spec.chunk
    fvec = U.vec(U.F32, ch)
    zero = ir.Constant(fvec, [0.0] * ch)
    outs = [entry_alloca(b, fvec, f"out{c}") for c in range(chunks)]
    accs = [[entry_alloca(b, fvec, f"acc{c}_{h}") for h in range(spec.per_byte)]
            for c in range(chunks)]
    for o in outs:
        b.store(zero, o)
    rows = spec.block // spec.per_byte  # byte rows per block
    with U.for_range(b, U.i64(0), b.sdiv(v["k"], U.i64(spec.block)), name="blk") as blk:
        zeros, scales, row0 = _block(b, spec, v, panel, blk)
        for acc in (a for per in accs for a in per):
            b.store(zero, acc)
        with U.for_range(b, U.i64(0), U.i64(rows), name="row") as row:
            at = b.mul(b.add(row0, row), U.i64(spec.width))
            k0 = b.add(b.mul(blk, U.i64(spec.block)), b.mul(row, U.i64(spec.per_byte)))
            xs = [U.splat(b, U.load(b, v["a"], b.add(k0, U.i64(h))), ch)
                  for h in range(spec.per_byte)]
            for c in range(chunks):
                codes = centered_codes(b, spec, v["q"], b.add(at, U.i64(c * ch)), zeros[c])
                for h, w in enumerate(codes):
                    b.store(U.fma(b, w, xs[h], b.load(accs[c][h], typ=fvec)), accs[c][h])
        for c in range(chunks):
            total = b.load(accs[c][0], typ=fvec)
            for h in range(1, spec.per_byte):
                total = U.fadd(b, total, b.load(accs[c][h], typ=fvec))
            b.store(U.fma(b, total, scales[c], b.load(outs[c], typ=fvec)), outs[c])
    _store_columns(b, spec, bias, v, panel, [b.load(o, typ=fvec) for o in outs])


def _block(b: ir.IRBuilder, spec: PanelSpec, v: dict[str, ir.Value], panel: ir.Value,
           blk: ir.Value) -> tuple[list[ir.Value], list[ir.Value], ir.Value]:
    """Quantization block `blk` of a panel: (its zero point and scale vectors per
    chunk, its first byte row in q)."""
    ch = spec.chunk
    meta = b.mul(b.add(b.mul(panel, b.sdiv(v["k"], U.i64(spec.block))), blk), U.i64(spec.width))
    chunks = range(spec.width // ch)
    zeros = [U.load_vec(b, v["zeros"], b.add(meta, U.i64(c * ch)), ch, U.I8) for c in chunks]
    scales = [U.load_vec(b, v["scales"], b.add(meta, U.i64(c * ch)), ch) for c in chunks]
    rows = spec.block // spec.per_byte
    row0 = b.add(b.mul(panel, b.sdiv(v["k"], U.i64(spec.per_byte))), b.mul(blk, U.i64(rows)))
    return zeros, scales, row0


def _store_columns(b: ir.IRBuilder, spec: PanelSpec, bias: bool, v: dict[str, ir.Value],
                   panel: ir.Value, outs: list[ir.Value]) -> None:
    """The panel's valid columns of y (the last panel may be partly padding)."""
    col0 = b.mul(panel, U.i64(spec.width))
    for c, out in enumerate(outs):
        for lane in range(spec.chunk):
            col = b.add(col0, U.i64(c * spec.chunk + lane))
            with b.if_then(b.icmp_signed("<", col, v["n"])):
                value = b.extract_element(out, U.i64(lane))
                if bias:
                    value = b.fadd(value, U.load(b, v["bias"], col))
                U.store(b, value, v["y"], col)


def centered_codes(b: ir.IRBuilder, spec: PanelSpec, q: ir.Value, at: ir.Value,
                   zeros: ir.Value) -> list[ir.Value]:
    """q - z as float vectors of `chunk` columns, one per k held in the bytes at q[at]:
    for 4 bits the difference is taken on bytes (it lies in [-15, 15])."""
    ch = spec.chunk
    bytes_ = U.load_vec(b, q, at, ch, U.I8)
    fvec, ivec = U.vec(U.F32, ch), U.vec(U.I32, ch)
    if spec.bits == 8:
        wide = b.sub(b.zext(bytes_, ivec), b.zext(zeros, ivec))
        return [b.sitofp(wide, fvec)]
    low = b.and_(bytes_, ir.Constant(U.vec(U.I8, ch), [0x0F] * ch))
    high = b.lshr(bytes_, ir.Constant(U.vec(U.I8, ch), [4] * ch))
    return [b.sitofp(b.sub(part, zeros), fvec) for part in (low, high)]


def get_dequantize_panels(module: ir.Module, spec: PanelSpec) -> ir.Function:
    """dequantize_panels(dst, q, scales, zeros, K, pc, kcur, jc, ncur): B[pc:pc+kcur,
    jc:jc+ncur] as the GEMM's packed panels [ceil(ncur / W)][kcur][W] of
    (q - z) * s. jc is a multiple of W, pc and kcur of the block."""
    name = f"dequantize_panels_{spec.tag}"
    if name in module.globals:
        return module.globals[name]
    names = ["dst", "q", "scales", "zeros", "k", "pc", "kcur", "jc", "ncur"]
    fn, b = U.define(module, name, [U.PTR] * 4 + [U.I64] * 5, names, noalias=True)
    fn.linkage = "internal"
    v = dict(zip(names, fn.args, strict=True))
    w, ch = spec.width, spec.chunk
    panels = b.sdiv(b.add(v["ncur"], U.i64(w - 1)), U.i64(w))
    rows = spec.block // spec.per_byte
    with U.for_range(b, U.i64(0), panels, name="pp") as pp:
        panel = b.add(b.sdiv(v["jc"], U.i64(w)), pp)
        dst = U.gep(b, v["dst"], b.mul(pp, b.mul(v["kcur"], U.i64(w))))
        first = b.sdiv(v["pc"], U.i64(spec.block))
        count = b.sdiv(v["kcur"], U.i64(spec.block))
        with U.for_range(b, U.i64(0), count, name="blk") as i:
            zeros, scales, row0 = _block(b, spec, v, panel, b.add(first, i))
            with U.for_range(b, U.i64(0), U.i64(rows), name="row") as row:
                src = b.mul(b.add(row0, row), U.i64(w))
                out_k = b.add(b.mul(i, U.i64(spec.block)), b.mul(row, U.i64(spec.per_byte)))
                for c in range(w // ch):
                    codes = centered_codes(b, spec, v["q"], b.add(src, U.i64(c * ch)), zeros[c])
                    for h, code in enumerate(codes):
                        at = b.add(b.mul(b.add(out_k, U.i64(h)), U.i64(w)), U.i64(c * ch))
                        U.store_vec(b, U.fmul(b, code, scales[c]), dst, at)
    b.ret_void()
    return fn
