"""The plain int8 GEMM: the path for targets without a matching int8 intrinsic
(x86-avx2 has no VNNI, a Cortex-M has none declared), and the reference the
tensorized kernels are tested against. Exact in int32; LLVM vectorizes its
inner loop by itself.

C's columns are computed in blocks of `nb`. Per batch item and column block:

- a runtime B ("strided" or the "im2col" view of an NCHW image) is first
  written, zero point removed, to an i16 scratch Bz[k][0:nb]; the block bounds
  that scratch, so a convolution's im2col never needs the whole image's worth
  of RAM (a microcontroller has little of it);
- a constant B ("const", row-major [K][N]) is read where it is, in the weights
  (flash on a microcontroller): no run-time copy of a weight-sized matrix. Its
  zero point is applied once per row: sum_k a'(b - zb) = sum_k a'b - zb sum_k a'.

then per row m (a' = A[m, k] - za[m]):

    acc[j]  = sum_k a' * Bz[k, j]   or   sum_k a' * B[k, n0 + j] - zb[n0 + j] sum_k a'
    C[m, n0 + j] = acc[j] (+ bias)  or  requantize(acc[j] + bias)
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ...llvm_util import I8, I16, I32, define, for_range, gep, i64, load
from ...llvm_util import I64 as I64T
from ...llvm_util import PTR as PTRT
from .int_epilogue import IntEpilogue, store_int_row
from .pack_int8 import IM2COL_GEOMETRY, im2col_source

B_SOURCES = ("strided", "im2col", "const")
BZ_BUDGET = 16 << 10  # bytes of the i16 block of a runtime B


@dataclass(frozen=True)
class PlainIGemmSpec:
    a_signed: bool
    b_signed: bool
    b_src: str = "strided"
    epi: IntEpilogue = IntEpilogue()
    # one zero point for all rows of A, read from za[0]: za then needs no entry
    # per row, which a run-time M (a symbolic batch) cannot have at compile time
    za_shared: bool = False

    def __post_init__(self) -> None:
        if self.b_src not in B_SOURCES:
            raise ValueError(f"B source {self.b_src!r} is not one of {B_SOURCES}")

    @property
    def name(self) -> str:
        a, b = ("i8" if s else "u8" for s in (self.a_signed, self.b_signed))
        shared = "_zas" if self.za_shared else ""
        return f"igemm_plain_{a}{b}_b{self.b_src}{shared}_{self.epi.tag}"

    def params(self) -> list[tuple[str, str]]:
        out = [("a", PTR), ("b", PTR), ("c", PTR), ("scratch", PTR), ("za", PTR), ("zb", PTR)]
        out += [(n, I64) for n in ("M", "N", "K", "nb", "ldc", "sam", "sak", "batch",
                                   "a_bstride", "b_bstride", "c_bstride")]
        if self.b_src == "im2col":
            out += [(n, I64) for n in IM2COL_GEOMETRY]
        else:
            out += [("sbk", I64), ("sbn", I64)]
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


def plain_block(n, k, const_b: bool):
    """Columns per block: all of them for a constant B (only the i32 row is
    scratch) up to 512, else as many as keep Bz within BZ_BUDGET (at least 16).
    A symbolic N or K is not blocked."""
    if not isinstance(n, int) or not isinstance(k, int):
        return n
    if const_b:
        return max(1, min(n, 512))
    return max(1, min(n, max(16, BZ_BUDGET // (2 * max(k, 1)) // 16 * 16)))


def plain_scratch_bytes(nb, k, const_b: bool):
    """Bz (K x nb i16, for a runtime B) then one i32 accumulator row (nb), 64-byte aligned."""
    return (0 if const_b else _round64(2 * k * nb)) + _round64(4 * nb)


def _round64(x):
    return -(-x // 64) * 64


def build_plain_igemm(module: ir.Module, target: CpuTarget, spec: PlainIGemmSpec) -> ir.Function:
    names = [n for n, _ in spec.params()]
    types = [PTRT if k == PTR else I64T for _, k in spec.params()]
    fn, b = define(module, spec.name, types, names, noalias=True)
    v = dict(zip(names, fn.args, strict=True))
    bz = v["scratch"]
    bz_bytes = i64(0) if spec.b_src == "const" else b.mul(b.mul(v["K"], v["nb"]), i64(2))
    acc = gep(b, bz, b.mul(b.sdiv(b.add(bz_bytes, i64(63)), i64(64)), i64(64)), I8)
    blocks = b.sdiv(b.add(v["N"], b.sub(v["nb"], i64(1))), v["nb"])
    sum_slot = b.alloca(I32, name="sum_a")  # in the entry block: promoted to a register
    with for_range(b, 0, v["batch"], name="batch") as item:
        a = gep(b, v["a"], b.mul(item, v["a_bstride"]), I8)
        src = gep(b, v["b"], b.mul(item, v["b_bstride"]), I8)
        c_item = b.mul(item, v["c_bstride"])
        with for_range(b, 0, blocks, name="blk") as blk:
            n0 = b.mul(blk, v["nb"])
            rest = b.sub(v["N"], n0)
            width = b.select(b.icmp_signed("<", rest, v["nb"]), rest, v["nb"])
            if spec.b_src != "const":
                _fill_bz(b, spec, v, src, bz, n0, width)
            with for_range(b, 0, v["M"], name="m") as m:
                if spec.b_src == "const":
                    _row_dot_const(b, spec, v, a, m, src, acc, n0, width, sum_slot)
                else:
                    _row_dot(b, spec, v, a, m, bz, acc, width)
                store_int_row(b, spec.epi, v, acc, m, b.add(c_item, b.mul(m, v["ldc"])),
                              n0, width)
    b.ret_void()
    return fn


def _fill_bz(b: ir.IRBuilder, spec: PlainIGemmSpec, v: dict[str, ir.Value], src: ir.Value,
             bz: ir.Value, n0: ir.Value, width: ir.Value) -> None:
    """Bz[k][j] = B[k, n0 + j] - zb[n0 + j] as i16 (0 where im2col reads padding)."""
    with for_range(b, 0, v["K"], name="bk") as k:
        with for_range(b, 0, width, name="bn") as j:
            n = b.add(n0, j)
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
            b.store(b.trunc(val, I16), gep(b, bz, b.add(b.mul(k, width), j), I16))


def _row_dot(b: ir.IRBuilder, spec: PlainIGemmSpec, v: dict[str, ir.Value], a: ir.Value,
             m: ir.Value, bz: ir.Value, acc: ir.Value, width: ir.Value) -> None:
    _zero(b, acc, width)
    za = _za(b, spec, v, m)
    with for_range(b, 0, v["K"], name="k") as k:
        av = b.sub(_widen(b, _a_at(b, v, a, m, k), spec.a_signed), za)
        row = gep(b, bz, b.mul(k, width), I16)
        with for_range(b, 0, width, name="n") as n:
            prod = b.mul(av, b.sext(load(b, row, n, I16), I32))
            slot = gep(b, acc, n, I32)
            b.store(b.add(b.load(slot, typ=I32), prod), slot)


def _row_dot_const(b: ir.IRBuilder, spec: PlainIGemmSpec, v: dict[str, ir.Value],
                   a: ir.Value, m: ir.Value, src: ir.Value, acc: ir.Value, n0: ir.Value,
                   width: ir.Value, sum_slot: ir.Value) -> None:
    """B read in place (row k at src + k * sbk, unit column stride)."""
    _zero(b, acc, width)
    za = _za(b, spec, v, m)
    b.store(ir.Constant(I32, 0), sum_slot)
    with for_range(b, 0, v["K"], name="k") as k:
        av = b.sub(_widen(b, _a_at(b, v, a, m, k), spec.a_signed), za)
        b.store(b.add(b.load(sum_slot, typ=I32), av), sum_slot)
        row = gep(b, src, b.add(b.mul(k, v["sbk"]), n0), I8)
        with for_range(b, 0, width, name="n") as n:
            prod = b.mul(av, _widen(b, load(b, row, n, I8), spec.b_signed))
            slot = gep(b, acc, n, I32)
            b.store(b.add(b.load(slot, typ=I32), prod), slot)
    sum_a = b.load(sum_slot, typ=I32)
    with for_range(b, 0, width, name="zb") as n:
        zb = load(b, v["zb"], b.add(n0, n), I32)
        slot = gep(b, acc, n, I32)
        b.store(b.sub(b.load(slot, typ=I32), b.mul(zb, sum_a)), slot)


def _za(b: ir.IRBuilder, spec: PlainIGemmSpec, v: dict[str, ir.Value], m: ir.Value) -> ir.Value:
    return load(b, v["za"], i64(0) if spec.za_shared else m, I32)


def _a_at(b: ir.IRBuilder, v: dict[str, ir.Value], a: ir.Value, m: ir.Value,
          k: ir.Value) -> ir.Value:
    return load(b, a, b.add(b.mul(m, v["sam"]), b.mul(k, v["sak"])), I8)


def _zero(b: ir.IRBuilder, acc: ir.Value, width: ir.Value) -> None:
    with for_range(b, 0, width, name="zero") as n:
        b.store(ir.Constant(I32, 0), gep(b, acc, n, I32))


def _widen(b: ir.IRBuilder, x: ir.Value, signed: bool) -> ir.Value:
    return b.sext(x, I32) if signed else b.zext(x, I32)
