"""The fused epilogue of GEMM-like kernels: what happens to an accumulator
vector on its way to memory after the last K block.

    out = clip(alpha * acc + beta * bias + residual, lo, hi)

Each term is a compile-time switch (so a plain GEMM pays for none of them);
the values (pointers, leading dimensions, alpha/beta, clip bounds) are runtime
arguments, so one function serves every layer with the same epilogue shape.
Relu is clip(0, +inf).

A transposed epilogue stores C (and reads the residual) column-major:
element (m, n) lives at c[n * ldc + m]. Small-N convs use it to run the GEMM
with pixels as rows (see lower/conv.py); its vectors then run along m.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import llvmlite.ir as ir

from ....program import F32, I64, PTR
from ...llvm_util import F32 as F32T
from ...llvm_util import fadd, fmul, gep, intrinsic, load, load_vec, splat
from .gemm_simd import masked_load, raw_gep

BIAS_KINDS = ("none", "row", "col", "mat")


@dataclass(frozen=True)
class Epilogue:
    # "row": bias[m * ldbias] broadcast along the row (conv bias; ldbias=0 is a scalar),
    # "col": bias[n] (Gemm's C of shape (N,)), "mat": bias[m * ldbias + n].
    bias: str = "none"
    residual: bool = False  # + res[m * ldres + n] (a skip connection, same shape as C)
    clip: bool = False  # clip(., lo, hi); Relu is clip(0, inf)
    scaled: bool = False  # alpha and beta are runtime values instead of 1
    transposed: bool = False  # C and the residual are column-major (vectors along m)

    def __post_init__(self) -> None:
        if self.bias not in BIAS_KINDS:
            raise ValueError(f"bias kind {self.bias!r} not in {BIAS_KINDS}")
        if self.transposed and (self.bias not in ("none", "col") or self.scaled):
            raise ValueError("a transposed epilogue supports only a per-column bias")

    @property
    def tag(self) -> str:
        parts = [f"b{self.bias}"] if self.bias != "none" else []
        parts += ["res"] * self.residual + ["clip"] * self.clip + ["ab"] * self.scaled
        parts += ["T"] * self.transposed
        return "_".join(parts) or "plain"

    def params(self) -> list[tuple[str, str]]:
        """(name, kind) of the runtime arguments this epilogue needs, in order."""
        out: list[tuple[str, str]] = []
        if self.bias != "none":
            out += [("bias", PTR), ("ldbias", I64)]
        if self.residual:
            out += [("res", PTR), ("ldres", I64)]
        if self.scaled:
            out += [("alpha", F32), ("beta", F32)]
        if self.clip:
            out += [("lo", F32), ("hi", F32)]
        return out


@dataclass
class EpilogueValues:
    """The runtime values of an Epilogue inside a function, by param name."""

    spec: Epilogue
    values: dict[str, ir.Value] = field(default_factory=dict)

    def args(self) -> list[ir.Value]:
        return [self.values[n] for n, _ in self.spec.params()]

    def at(self, b: ir.IRBuilder, row: ir.Value, col: ir.Value) -> EpilogueValues:
        """The same epilogue with its pointers moved to C's element (row, col)."""
        v = dict(self.values)
        s = self.spec
        if s.bias == "row":
            v["bias"] = gep(b, v["bias"], b.mul(row, v["ldbias"]))
        elif s.bias == "col":
            v["bias"] = gep(b, v["bias"], col)
        elif s.bias == "mat":
            v["bias"] = gep(b, v["bias"], b.add(b.mul(row, v["ldbias"]), col))
        if s.residual:
            major, minor = (col, row) if s.transposed else (row, col)
            v["res"] = gep(b, v["res"], b.add(b.mul(major, v["ldres"]), minor))
        return EpilogueValues(s, v)

    def apply(self, b: ir.IRBuilder, acc: ir.Value, row: ir.Value, col: ir.Value,
              mask: ir.Value | None = None) -> ir.Value:
        """acc for C's element (row, col) relative to the origin set by `at`, the
        vector running along col (along row if transposed); `mask` limits the
        vector loads to the valid lanes at an edge."""
        s, v = self.spec, self.values
        n = acc.type.count

        def vload(ptr: ir.Value, index: ir.Value) -> ir.Value:
            if mask is None:
                return load_vec(b, ptr, index, n)
            return masked_load(b, raw_gep(b, ptr, index), mask, n)

        if s.scaled:
            acc = fmul(b, acc, splat(b, v["alpha"], n))
        if s.bias != "none":
            if s.transposed:  # bias kind "col": one value per column = per vector
                term = splat(b, load(b, v["bias"], col, F32T), n)
            elif s.bias == "row":
                term = splat(b, load(b, v["bias"], b.mul(row, v["ldbias"]), F32T), n)
            elif s.bias == "col":
                term = vload(v["bias"], col)
            else:
                term = vload(v["bias"], b.add(b.mul(row, v["ldbias"]), col))
            if s.scaled:
                term = fmul(b, term, splat(b, v["beta"], n))
            acc = fadd(b, acc, term)
        if s.residual:
            major, minor = (col, row) if s.transposed else (row, col)
            acc = fadd(b, acc, vload(v["res"], b.add(b.mul(major, v["ldres"]), minor)))
        if s.clip:
            acc = clamp(b, acc, splat(b, v["lo"], n), splat(b, v["hi"], n))
        return acc


def clamp(b: ir.IRBuilder, x: ir.Value, lo: ir.Value, hi: ir.Value) -> ir.Value:
    """min(max(x, lo), hi) without fast-math flags: Relu passes hi = +inf, which
    'fast' (ninf) would make poison."""
    n = x.type.count
    mx = intrinsic(b.module, f"llvm.maxnum.v{n}f32", x.type, [x.type] * 2)
    mn = intrinsic(b.module, f"llvm.minnum.v{n}f32", x.type, [x.type] * 2)
    return b.call(mn, [b.call(mx, [x, lo]), hi])
