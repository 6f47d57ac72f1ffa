"""DFT and STFT as direct sums (O(n^2) per line): exact to float32 rounding for
the signal lengths ONNX models use them on, and simple. Twiddle angles are
reduced as (k * t mod L) / L before the sine and cosine, so they stay accurate
for long lines.

A line is the signal along the transformed axis at one (outer, inner) position
of x viewed as [outer, n, inner, components] (components: 1 real, 2 complex).
The axis and the lengths may be runtime tensors, as in opset 20.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn_trig as T
from ..support.dtype_ir import load_index
from ..support.vloop import define_kernel, entry_alloca, nested_loops
from .gather import MAX_RANK, load_table
from .scan_ops import split_at_axis


@dataclass(frozen=True)
class DftSpec:
    inverse: bool
    onesided: bool
    complex_in: bool
    complex_out: bool

    @property
    def name(self) -> str:
        return (f"dft{'_inverse' if self.inverse else ''}{'_onesided' if self.onesided else ''}"
                f"_{'c' if self.complex_in else 'r'}2{'c' if self.complex_out else 'r'}_f32")


def dft_kernel(spec: DftSpec) -> Kernel:
    """(x, y, axis, length, dims, rank, n_out, has_length): dims i64[MAX_RANK] is x's
    shape without its components dim, front-padded; axis and length are 1-element
    i64 tensors (length only read when has_length); n_out < 0 means n_in."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, spec.name, [U.PTR] * 5 + [U.I64] * 3,
                              ["x", "y", "axis", "length", "dims", "rank", "n_out", "has_length"])
        x, y, axis_p, length_p, dims_p, rank, n_out, has_length = fn.args
        a = load_index(b, axis_p, U.i64(0), DType.int64)
        a = b.select(b.icmp_signed("<", a, U.i64(0)), b.add(a, rank), a)
        outer, n_in, inner = split_at_axis(b, load_table(b, dims_p, MAX_RANK),
                                            b.add(a, b.sub(U.i64(MAX_RANK + 1), rank)))
        default = b.mul(b.sub(n_in, U.i64(1)), U.i64(2)) if spec.inverse and spec.onesided \
            else n_in
        given = b.icmp_signed("!=", has_length, U.i64(0))
        length = b.select(given, load_index(b, length_p, U.i64(0), DType.int64), default)
        n_out = b.select(b.icmp_signed("<", n_out, U.i64(0)), n_in, n_out)
        line = _Line(b, spec, (x, y), (n_in, n_out, inner), length)
        with nested_loops(b, [outer, inner]) as (o, i):
            line.emit(o, i)
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 5 + (I64,) * 3, build)


class _Line:
    def __init__(self, b: ir.IRBuilder, spec: DftSpec, bufs, sizes, length: ir.Value):
        self.b, self.spec = b, spec
        self.x, self.y = bufs
        self.n_in, self.n_out, self.inner = sizes
        self.length = length
        # double sums: a bin whose terms cancel keeps the tiny residue a float64
        # reference computes, instead of float32's cancellation noise
        self.re, self.im = entry_alloca(b, U.F64, "re"), entry_alloca(b, U.F64, "im")

    def _at(self, o: ir.Value, t: ir.Value, i: ir.Value, n: ir.Value, comps: int,
            c: int) -> ir.Value:
        b = self.b
        return b.add(b.mul(b.add(b.mul(b.add(b.mul(o, n), t), self.inner), i), U.i64(comps)),
                     U.i64(c))

    def emit(self, o: ir.Value, i: ir.Value) -> None:
        b, spec = self.b, self.spec
        cin, cout = (2 if spec.complex_in else 1), (2 if spec.complex_out else 1)
        half = b.add(b.sdiv(self.length, U.i64(2)), U.i64(1))
        terms = U.smin(b, self.n_in, half if spec.inverse and spec.onesided else self.length)
        with U.for_range(b, U.i64(0), self.n_out, name="k") as k:
            b.store(ir.Constant(U.F64, 0.0), self.re)
            b.store(ir.Constant(U.F64, 0.0), self.im)
            with U.for_range(b, U.i64(0), terms, name="t") as t:
                xr = U.load(b, self.x, self._at(o, t, i, self.n_in, cin, 0))
                xi = U.load(b, self.x, self._at(o, t, i, self.n_in, cin, 1)) if cin == 2 \
                    else U.f32(0.0)
                self._accumulate(k, t, xr, xi)
            scale = b.sitofp(self.length, U.F64) if spec.inverse else ir.Constant(U.F64, 1.0)
            for c, slot in enumerate((self.re, self.im)[:cout]):
                v = b.fptrunc(b.fdiv(b.load(slot, typ=U.F64), scale), U.F32)
                U.store(b, v, self.y, self._at(o, k, i, self.n_out, cout, c))

    def _accumulate(self, k: ir.Value, t: ir.Value, xr: ir.Value, xi: ir.Value) -> None:
        """(re, im) += x[t] * e^(-+2 pi i k t / L); a one-sided inverse adds each inner
        bin twice (its conjugate twin) and uses only the real part."""
        b, spec = self.b, self.spec
        c, s = (b.fpext(v, U.F64) for v in twiddle(b, b.srem(b.mul(k, t), self.length),
                                                      self.length))
        xr, xi = b.fpext(xr, U.F64), b.fpext(xi, U.F64)
        if not spec.inverse:
            s = b.fneg(s)
        re = b.fsub(b.fmul(xr, c), b.fmul(xi, s))
        im = b.fadd(b.fmul(xr, s), b.fmul(xi, c))
        if spec.inverse and spec.onesided:
            nyquist = b.and_(b.icmp_signed("==", b.mul(t, U.i64(2)), self.length),
                             b.icmp_signed("==", b.srem(self.length, U.i64(2)), U.i64(0)))
            single = b.or_(b.icmp_signed("==", t, U.i64(0)), nyquist)
            re = b.select(single, b.fmul(xr, c), b.fmul(re, ir.Constant(U.F64, 2.0)))
        b.store(b.fadd(b.load(self.re, typ=U.F64), re), self.re)
        b.store(b.fadd(b.load(self.im, typ=U.F64), im), self.im)


def twiddle(b: ir.IRBuilder, turn: ir.Value, length: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(cos, sin) of 2 pi turn / length for 0 <= turn < length: split into whole
    quarter turns (exact, by integer arithmetic) and a rest below pi/2, so the
    quarter-turn angles give exact zeros and ones."""
    quarter = b.sdiv(b.mul(turn, U.i64(4)), length)
    rest = b.sub(b.mul(turn, U.i64(4)), b.mul(quarter, length))
    angle = b.fmul(b.sitofp(rest, U.F32), b.fdiv(U.f32(math.pi / 2), b.sitofp(length, U.F32)))
    c, s = T.cos_f32(b, angle), T.sin_f32(b, angle)
    q = [b.icmp_signed("==", quarter, U.i64(k)) for k in (1, 2, 3)]
    cos = b.select(q[0], b.fneg(s), b.select(q[1], b.fneg(c), b.select(q[2], s, c)))
    sin = b.select(q[0], c, b.select(q[1], b.fneg(s), b.select(q[2], b.fneg(c), s)))
    return cos, sin


def stft_kernel(windowed: bool) -> Kernel:
    """(x, y, window, step, batch, length, frames, bins, frame_len): y[b, f, k] =
    sum_t x[b, f*step + t] w[t] e^(-2 pi i k t / frame_len), real input."""
    name = f"stft{'_windowed' if windowed else ''}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 5,
                              ["x", "y", "window", "step", "batch", "length", "frames", "bins",
                               "frame_len"])
        x, y, window, step_p, batch, length, frames, bins, frame_len = fn.args
        step = load_index(b, step_p, U.i64(0), DType.int64)
        re, im = entry_alloca(b, U.F32, "re"), entry_alloca(b, U.F32, "im")
        with nested_loops(b, [batch, frames, bins]) as (bi, f, k):
            b.store(U.f32(0.0), re)
            b.store(U.f32(0.0), im)
            start = b.add(b.mul(bi, length), b.mul(f, step))
            with U.for_range(b, U.i64(0), frame_len, name="t") as t:
                v = U.load(b, x, b.add(start, t))
                if windowed:
                    v = b.fmul(v, U.load(b, window, t))
                c, s = twiddle(b, b.srem(b.mul(k, t), frame_len), frame_len)
                b.store(b.fadd(b.load(re, typ=U.F32), b.fmul(v, c)), re)
                b.store(b.fsub(b.load(im, typ=U.F32), b.fmul(v, s)), im)
            at = b.mul(b.add(b.mul(b.add(b.mul(bi, frames), f), bins), k), U.i64(2))
            U.store(b, b.load(re, typ=U.F32), y, at)
            U.store(b, b.load(im, typ=U.F32), y, b.add(at, U.i64(1)))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 5, build)
