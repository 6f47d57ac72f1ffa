"""GridSample: sample X [N, C, *spatial] at the normalized coordinates of a grid
[N, *out, nd] (x first), for nd = 2 or 3 spatial dims, as onnx.reference does:
nearest / linear / cubic (Keys, a = -0.75) taps, zeros / border / reflection
padding, align_corners. The mode, padding and nd specialize the kernel; the
taps of linear and cubic are unrolled (2^nd and 4^nd of them). AffineGrid, which
makes such grids from affine matrices, lives here too.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.typed_ops import call_intrinsic
from ..support.vloop import define_kernel, nested_loops
from .gather import load_table

CUBIC_A = -0.75


@dataclass(frozen=True)
class GridSampleSpec:
    nd: int  # spatial dims, 2 or 3
    mode: str  # nearest, linear, cubic
    padding: str  # zeros, border, reflection
    align_corners: bool

    @property
    def name(self) -> str:
        return (f"grid_sample_{self.nd}d_{self.mode}_{self.padding}"
                f"{'_aligned' if self.align_corners else ''}_f32")


def grid_sample_kernel(spec: GridSampleSpec) -> Kernel:
    """(x, grid, y, plan): plan i64 = [N, C, out positions, spatial dims of X...]."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, spec.name, [U.PTR] * 4, ["x", "grid", "y", "plan"])
        x, grid, y, plan = fn.args
        n, c, positions, *dims = load_table(b, plan, 3 + spec.nd)
        _Sampler(b, spec, x, dims).run(grid, y, n, c, positions)
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 4, build)


class _Sampler:
    def __init__(self, b: ir.IRBuilder, spec: GridSampleSpec, x: ir.Value, dims: list[ir.Value]):
        self.b, self.spec, self.x, self.dims = b, spec, x, dims
        self.fdims = [b.sitofp(d, U.F32) for d in dims]
        self.plane = U.i64(1)
        for d in dims:
            self.plane = b.mul(self.plane, d)
        # the coordinate range inside which no padding rule applies
        if spec.align_corners:
            self.lo = [U.f32(0.0)] * spec.nd
            self.hi = [b.fsub(f, U.f32(1.0)) for f in self.fdims]
        else:
            self.lo = [U.f32(-0.5)] * spec.nd
            self.hi = [b.fsub(f, U.f32(0.5)) for f in self.fdims]

    def run(self, grid: ir.Value, y: ir.Value, n: ir.Value, c: ir.Value,
            positions: ir.Value) -> None:
        b, nd = self.b, self.spec.nd
        with nested_loops(b, [n, positions]) as (bi, o):
            at = b.mul(b.add(b.mul(bi, positions), o), U.i64(nd))
            # grid holds (x, y[, z]); X's spatial dims run the other way
            coords = [self._coordinate(U.load(b, grid, b.add(at, U.i64(nd - 1 - i))), i)
                      for i in range(nd)]
            with U.for_range(b, U.i64(0), c, name="ch") as ch:
                base = b.mul(b.add(b.mul(bi, c), ch), self.plane)
                value = self._sample(base, coords)
                U.store(b, value, y, b.add(b.mul(b.add(b.mul(bi, c), ch), positions), o))

    def _coordinate(self, g: ir.Value, i: int) -> ir.Value:
        """The grid value in pixel units, rounded for nearest, with border and
        reflection padding applied to coordinates outside the range."""
        b = self.b
        size = self.fdims[i]
        if self.spec.align_corners:
            v = b.fmul(b.fmul(b.fadd(g, U.f32(1.0)), U.f32(0.5)), b.fsub(size, U.f32(1.0)))
        else:
            v = b.fmul(b.fsub(b.fmul(b.fadd(g, U.f32(1.0)), size), U.f32(1.0)), U.f32(0.5))
        if self.spec.mode == "nearest":
            v = call_intrinsic(b, "roundeven", v)
        outside = b.or_(b.fcmp_ordered("<", v, self.lo[i]), b.fcmp_ordered(">", v, self.hi[i]))
        if self.spec.padding == "border":
            v = b.select(outside, _clampf(b, v, U.f32(0.0), b.fsub(size, U.f32(1.0))), v)
        elif self.spec.padding == "reflection":
            v = self._reflect(v, i)
        return v

    def _reflect(self, v: ir.Value, i: int) -> ir.Value:
        """Fold v back into [lo, hi] by mirroring at the borders (v itself inside)."""
        b = self.b
        lo, hi = self.lo[i], self.hi[i]
        span = b.fsub(hi, lo)
        below = b.fcmp_ordered("<", v, lo)
        dist = b.select(below, b.fsub(lo, v), b.fsub(v, hi))
        folds = call_intrinsic(b, "trunc", b.fdiv(dist, span))
        rest = b.fsub(dist, b.fmul(folds, span))
        odd = b.trunc(b.fptosi(folds, U.I64), U.I1)
        near = b.select(below, b.fadd(lo, rest), b.fsub(hi, rest))
        far = b.select(below, b.fsub(hi, rest), b.fadd(lo, rest))
        outside = b.or_(below, b.fcmp_ordered(">", v, hi))
        return b.select(outside, b.select(odd, far, near), v)

    def _sample(self, base: ir.Value, coords: list[ir.Value]) -> ir.Value:
        b, mode = self.b, self.spec.mode
        if mode == "nearest":
            return self._pixel(base, [b.fptosi(v, U.I64) for v in coords])
        first = [b.fptosi(call_intrinsic(b, "floor", v), U.I64) for v in coords]
        frac = [b.fsub(v, b.sitofp(f, U.F32)) for v, f in zip(coords, first, strict=True)]
        if mode == "linear":
            weights = [[b.fsub(U.f32(1.0), t), t] for t in frac]
            offsets = (0, 1)
        else:
            weights = [_cubic_weights(b, t) for t in frac]
            offsets = (-1, 0, 1, 2)
        total = U.f32(0.0)
        for taps in itertools.product(range(len(offsets)), repeat=self.spec.nd):
            w = U.f32(1.0)
            for i, k in enumerate(taps):
                w = b.fmul(w, weights[i][k])
            idx = [b.add(f, U.i64(offsets[k])) for f, k in zip(first, taps, strict=True)]
            total = b.fadd(total, b.fmul(w, self._pixel(base, idx)))
        return total

    def _pixel(self, base: ir.Value, idx: list[ir.Value]) -> ir.Value:
        """X at integer indices, out-of-range ones handled by the padding mode."""
        b = self.b
        inside = ir.Constant(U.I1, 1)
        flat = U.i64(0)
        for i, (k, d) in enumerate(zip(idx, self.dims, strict=True)):
            if self.spec.padding == "border":
                k = _clampi(b, k, b.sub(d, U.i64(1)))
            elif self.spec.padding == "reflection":
                k = _clampi(b, b.fptosi(self._reflect(b.sitofp(k, U.F32), i), U.I64),
                            b.sub(d, U.i64(1)))
            else:
                inside = b.and_(inside, b.and_(b.icmp_signed(">=", k, U.i64(0)),
                                               b.icmp_signed("<", k, d)))
                k = _clampi(b, k, b.sub(d, U.i64(1)))
            flat = b.add(b.mul(flat, d), k)
        value = U.load(b, self.x, b.add(base, flat))
        return b.select(inside, value, U.f32(0.0))


def _clampf(b: ir.IRBuilder, v: ir.Value, lo: ir.Value, hi: ir.Value) -> ir.Value:
    v = b.select(b.fcmp_ordered("<", v, lo), lo, v)
    return b.select(b.fcmp_ordered(">", v, hi), hi, v)


def _clampi(b: ir.IRBuilder, k: ir.Value, hi: ir.Value) -> ir.Value:
    k = b.select(b.icmp_signed("<", k, U.i64(0)), U.i64(0), k)
    return b.select(b.icmp_signed(">", k, hi), hi, k)


def _cubic_weights(b: ir.IRBuilder, t: ir.Value) -> list[ir.Value]:
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for fraction t."""
    a = U.f32(CUBIC_A)

    def far(x: ir.Value) -> ir.Value:  # 1 <= |x| < 2
        inner = b.fsub(b.fmul(a, x), U.f32(5 * CUBIC_A))
        return b.fsub(b.fmul(b.fadd(b.fmul(inner, x), U.f32(8 * CUBIC_A)), x),
                      U.f32(4 * CUBIC_A))

    def near(x: ir.Value) -> ir.Value:  # |x| < 1
        inner = b.fsub(b.fmul(U.f32(CUBIC_A + 2), x), U.f32(CUBIC_A + 3))
        return b.fadd(b.fmul(b.fmul(inner, x), x), U.f32(1.0))

    one = U.f32(1.0)
    return [far(b.fadd(t, one)), near(t), near(b.fsub(one, t)), far(b.fsub(U.f32(2.0), t))]


def affine_grid_kernel(nd: int, align_corners: bool) -> Kernel:
    """AffineGrid: (theta, grid, plan) with plan i64 = [N, spatial dims...]; grid[n, p, k] =
    sum_j theta[n, k, j] v_j, v = (x, y[, z], 1) the normalized coordinates of output
    position p (x along the last dim)."""
    name = f"affine_grid_{nd}d{'_aligned' if align_corners else ''}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3, ["theta", "grid", "plan"])
        theta, grid, plan = fn.args
        n, *dims = load_table(b, plan, 1 + nd)
        with nested_loops(b, [n, *dims]) as (bi, *idx):
            # homogeneous coordinates, x (the last dim) first
            v = [_normalized(b, i, d, align_corners) for i, d in
                 zip(reversed(idx), reversed(dims), strict=True)] + [U.f32(1.0)]
            flat = bi
            for i, d in zip(idx, dims, strict=True):
                flat = b.add(b.mul(flat, d), i)
            for k in range(nd):
                acc = U.f32(0.0)
                for j in range(nd + 1):
                    w = U.load(b, theta, b.add(b.mul(bi, U.i64(nd * (nd + 1))),
                                               U.i64(k * (nd + 1) + j)))
                    acc = b.fadd(acc, b.fmul(w, v[j]))
                U.store(b, acc, grid, b.add(b.mul(flat, U.i64(nd)), U.i64(k)))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3, build)


def _normalized(b: ir.IRBuilder, i: ir.Value, n: ir.Value, align_corners: bool) -> ir.Value:
    """Index i of n in [-1, 1]: pixel corners (align_corners) or pixel centers."""
    fi, fn = b.sitofp(i, U.F32), b.sitofp(n, U.F32)
    if align_corners:
        return b.fadd(U.f32(-1.0), b.fdiv(b.fmul(fi, U.f32(2.0)), b.fsub(fn, U.f32(1.0))))
    return b.fadd(U.f32(-1.0), b.fdiv(b.fadd(b.fmul(fi, U.f32(2.0)), U.f32(1.0)), fn))
