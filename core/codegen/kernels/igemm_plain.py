"""The plain int8 GEMM: the path for targets without a matching int8 intrinsic
(x86-avx2 has no VNNI), and the reference the tensorized kernels are tested
against. Exact in int32; LLVM vectorizes its inner loop by itself.

Per batch item, B is first written, zero point removed, to an i16 scratch
matrix Bz[k][n] (from strides or as the im2col view of an NCHW image); then
per row m:

    acc[n]  = sum_k (A[m, k] - za[m]) * Bz[k, n]        (i32, contiguous in n)
    C[m, n] = acc[n] (+ bias)  or  requantize(acc[n] + bias)
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ...program import I64, PTR, Kernel
from ...target.machine import CpuTarget
from ..llvm_util import I8, I16, I32, define, for_range, gep, i64, load
from ..llvm_util import I64 as I64T
from ..llvm_util import PTR as PTRT
from .int_epilogue import IntEpilogue, store_int_row
from .pack_int8 import IM2COL_GEOMETRY, im2col_source

B_SOURCES = ("strided", "im2col")


@dataclass(frozen=True)
class PlainIGemmSpec:
    a_signed: bool
    b_signed: bool
    b_src: str = "strided"
    epi: IntEpilogue = IntEpilogue()

    @property
    def name(self) -> str:
        a, b = ("i8" if s else "u8" for s in (self.a_signed, self.b_signed))
        return f"igemm_plain_{a}{b}_b{self.b_src}_{self.epi.tag}"

    def params(self) -> list[tuple[str, str]]:
        out = [("a", PTR), ("b", PTR), ("c", PTR), ("scratch", PTR), ("za", PTR), ("zb", PTR)]
        out += [(n, I64) for n in ("M", "N", "K", "ldc", "sam", "sak", "batch", "a_bstride",
                                   "b_bstride", "c_bstride")]
        if self.b_src == "strided":
            out += [("sbk", I64), ("sbn", I64)]
        else:
            out += [(n, I64) for n in IM2COL_GEOMETRY]
        return out + self.epi.params()

    def args(self, values: dict[str, object]) -> tuple[object, ...]:
        names = [n for n, _ in self.params()]
        missing, extra = set(names) - set(values), set(values) - set(names)
        if missing or extra:
            raise ValueError(f"{self.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
        return tuple(values[n] for n in names)

    def kernel(self) -> Kernel:
        return Kernel(self.name, tuple(k for _, k in self.params()),
                      lambda module, target: build_plain_igemm(module, target, self))


def plain_scratch_bytes(m: int, n: int, k: int) -> int:
    """Bz (K x N i16) then one i32 accumulator row (N), 64-byte aligned."""
    return _round64(2 * k * n) + _round64(4 * n)


def _round64(x: int) -> int:
    return -(-x // 64) * 64


def build_plain_igemm(module: ir.Module, target: CpuTarget, spec: PlainIGemmSpec) -> ir.Function:
    names = [n for n, _ in spec.params()]
    types = [PTRT if k == PTR else I64T for _, k in spec.params()]
    fn, b = define(module, spec.name, types, names, noalias=True)
    v = dict(zip(names, fn.args, strict=True))
    bz = v["scratch"]
    bz_bytes = b.mul(b.mul(v["K"], v["N"]), i64(2))
    acc = gep(b, bz, b.mul(b.sdiv(b.add(bz_bytes, i64(63)), i64(64)), i64(64)), I8)
    with for_range(b, 0, v["batch"], name="batch") as item:
        a = gep(b, v["a"], b.mul(item, v["a_bstride"]), I8)
        src = gep(b, v["b"], b.mul(item, v["b_bstride"]), I8)
        c_item = b.mul(item, v["c_bstride"])
        _fill_bz(b, spec, v, src, bz)
        with for_range(b, 0, v["M"], name="m") as m:
            _row_dot(b, spec, v, a, m, bz, acc)
            store_int_row(b, spec.epi, v, acc, m, b.add(c_item, b.mul(m, v["ldc"])))
    b.ret_void()
    return fn


def _fill_bz(b: ir.IRBuilder, spec: PlainIGemmSpec, v: dict[str, ir.Value], src: ir.Value,
             bz: ir.Value) -> None:
    """Bz[k][n] = B[k, n] - zb[n] as i16 (0 where im2col reads padding)."""
    with for_range(b, 0, v["K"], name="bk") as k:
        with for_range(b, 0, v["N"], name="bn") as n:
            zb = load(b, v["zb"], n, I32)
            if spec.b_src == "strided":
                x = _widen(b, load(b, src, b.add(b.mul(k, v["sbk"]), b.mul(n, v["sbn"])), I8),
                           spec.b_signed)
                val = b.sub(x, zb)
            else:
                offset, inside = im2col_source(b, v, k, n)
                safe = b.select(inside, offset, i64(0))
                x = _widen(b, load(b, src, safe, I8), spec.b_signed)
                val = b.select(inside, b.sub(x, zb), ir.Constant(I32, 0))
            b.store(b.trunc(val, I16), gep(b, bz, b.add(b.mul(k, v["N"]), n), I16))


def _row_dot(b: ir.IRBuilder, spec: PlainIGemmSpec, v: dict[str, ir.Value], a: ir.Value,
             m: ir.Value, bz: ir.Value, acc: ir.Value) -> None:
    with for_range(b, 0, v["N"], name="zero") as n:
        b.store(ir.Constant(I32, 0), gep(b, acc, n, I32))
    za = load(b, v["za"], m, I32)
    with for_range(b, 0, v["K"], name="k") as k:
        ak = load(b, a, b.add(b.mul(m, v["sam"]), b.mul(k, v["sak"])), I8)
        av = b.sub(_widen(b, ak, spec.a_signed), za)
        row = gep(b, bz, b.mul(k, v["N"]), I16)
        with for_range(b, 0, v["N"], name="n") as n:
            prod = b.mul(av, b.sext(load(b, row, n, I16), I32))
            slot = gep(b, acc, n, I32)
            b.store(b.add(b.load(slot, typ=I32), prod), slot)


def _widen(b: ir.IRBuilder, x: ir.Value, signed: bool) -> ir.Value:
    return b.sext(x, I32) if signed else b.zext(x, I32)
