"""The epilogue of int8 GEMMs: an int32 accumulator on its way to memory.

    out = acc + bias                                   (int32 output), or
    out = saturate(round_half_even(float(acc + bias) * scale) + zp)   (8-bit)

The 8-bit form is onnxruntime's MlasRequantizeOutput step for step (float
multiply, clamp to [lo - zp, hi - zp], round to nearest even, add zp), so
results match it bit for bit. Bias and scale are arrays along one GEMM axis
("row": one per m, "col": one per n); a per-tensor scale is passed expanded.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR
from ...llvm_util import F32, I8, I32, for_range, gep, intrinsic, load, splat
from ...llvm_util import I64 as I64T

OUT_DTYPES = ("int32", "uint8", "int8")
_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


@dataclass(frozen=True)
class IntEpilogue:
    bias: str = "none"  # "none", "row" or "col"
    out: str = "int32"  # "int32", "uint8" or "int8"
    scale: str = "col"  # axis of the requantization scale: "row" or "col"

    def __post_init__(self) -> None:
        if self.bias not in ("none", "row", "col") or self.out not in OUT_DTYPES \
                or self.scale not in ("row", "col"):
            raise ValueError(f"bad int epilogue {self}")

    @property
    def requant(self) -> bool:
        return self.out != "int32"

    @property
    def tag(self) -> str:
        parts = [f"b{self.bias}"] if self.bias != "none" else []
        if self.requant:
            parts.append(f"q{self.out[0]}8s{self.scale}")
        return "_".join(parts) or "i32"

    def params(self) -> list[tuple[str, str]]:
        out = [("bias", PTR)] if self.bias != "none" else []
        if self.requant:
            out += [("scale", PTR), ("yzp", I64)]
        return out


def requantize(b: ir.IRBuilder, epi: IntEpilogue, acc: ir.Value, scale: ir.Value,
               yzp: ir.Value) -> ir.Value:
    """i32 (scalar or vector) -> the 8-bit value as i32; `scale` matches acc's shape."""
    lo, hi = _RANGE[epi.out]
    n = acc.type.count if isinstance(acc.type, ir.VectorType) else 0
    ft = ir.VectorType(F32, n) if n else F32
    zp = b.trunc(yzp, I32)
    zpf = b.sitofp(zp, F32)
    x = b.fmul(b.sitofp(acc, ft), scale)
    x = _clamp(b, x, b.fsub(ir.Constant(F32, float(lo)), zpf),
               b.fsub(ir.Constant(F32, float(hi)), zpf), n)
    suffix = f"v{n}f32" if n else "f32"
    rint = intrinsic(b.module, f"llvm.roundeven.{suffix}", ft, [ft])
    r = b.fptosi(b.call(rint, [x]), acc.type)
    return b.add(r, _splat(b, zp, n))


def _clamp(b: ir.IRBuilder, x: ir.Value, lo: ir.Value, hi: ir.Value, n: int) -> ir.Value:
    lo, hi = _splat(b, lo, n), _splat(b, hi, n)
    x = b.select(b.fcmp_ordered("<", x, lo), lo, x)
    return b.select(b.fcmp_ordered(">", x, hi), hi, x)


def _splat(b: ir.IRBuilder, x: ir.Value, n: int) -> ir.Value:
    return splat(b, x, n) if n else x


def store_int_row(b: ir.IRBuilder, epi: IntEpilogue, v: dict[str, ir.Value], acc: ir.Value,
                  m: ir.Value, c_row: ir.Value, n0: ir.Value | None = None,
                  width: ir.Value | None = None) -> None:
    """C[m, n0:n0 + width] from the i32 row acc[0:width] (default: all N columns);
    c_row is the row's element offset in C."""
    n0 = n0 if n0 is not None else ir.Constant(I64T, 0)
    with for_range(b, 0, width if width is not None else v["N"], name="out") as j:
        n = b.add(n0, j)
        x = load(b, acc, j, I32)
        if epi.bias != "none":
            x = b.add(x, load(b, v["bias"], m if epi.bias == "row" else n, I32))
        at = b.add(c_row, n)
        if epi.requant:
            scale = load(b, v["scale"], m if epi.scale == "row" else n, F32)
            q = requantize(b, epi, x, scale, v["yzp"])
            b.store(b.trunc(q, I8), gep(b, v["c"], at, I8))
        else:
            b.store(x, gep(b, v["c"], at, I32))
