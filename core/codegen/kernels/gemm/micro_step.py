"""One multiply-accumulate step of a GEMM micro-kernel, emitted from what an
intrinsic's YAML declares (tensorize/ turns a matched intrinsic into a
MicroStep), or the plain step: vector mul + add, instruction choice left to LLVM.

A step updates one accumulator: C's `n` lanes of one row += the row's A tile
(`k` consecutive elements, broadcast across the vector) times a B value (`n`
columns by `k` rows, laid out as `b_order` says). A step of `m` > 1 rows (i8mm's
smmla: 2x8 by 8x2) reads the A tiles of its m rows as one value, loaded as
packed (m rows of k), and its accumulator holds C's m x n tile row-major. A
step of one lane (`n` = 1: Helium's vmladav, the DSP's smlad) accumulates one
column of C in a scalar. An instruction that does not accumulate (`accumulate:
add` in its YAML, e.g. vpmaddwd) is followed by an add. The register tile of a
micro-kernel is MR rows (MR/m steps) x NV steps per k-step; `k_loop` emits it
over packed panels:

    A panel: per k-step, MR tiles of k elements          [K/k][MR][k]
    B panel: per k-step, NV_pack values of n*k elements  [K/k][NV_pack][n*k]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import llvmlite.ir as ir

from ...llvm_util import I64, PTR, fadd, fmul, i64, intrinsic, splat
from ..support.scalable import ScalableVectorType, fixed_of, to_fixed, to_scalable

_SCALARS = {"float": ir.FloatType(), "double": ir.DoubleType(), "half": ir.HalfType()}


def llvm_type(text: str) -> ir.Type:
    """'<16 x i32>', 'float', 'i64', '<vscale x 4 x i32>' -> the llvmlite type."""
    m = re.fullmatch(r"<vscale x (\d+) x (\w+)>", text.strip())
    if m:
        return ScalableVectorType(llvm_type(m.group(2)), int(m.group(1)))
    m = re.fullmatch(r"<(\d+) x (\w+)>", text.strip())
    if m:
        return ir.VectorType(llvm_type(m.group(2)), int(m.group(1)))
    return _SCALARS.get(text.strip()) or ir.IntType(int(text.strip()[1:]))


def type_bits(t: ir.Type) -> int:
    if isinstance(t, ir.VectorType):
        return t.count * type_bits(t.element)
    if isinstance(t, ir.IntType):
        return t.width
    return {"float": 32, "double": 64, "half": 16}[str(t)]


@dataclass(frozen=True)
class StepOperand:
    role: str  # "A" (broadcast tile), "B" (contiguous value), "C" (accumulator), "const"
    type: str  # LLVM type text
    const: int | None = None


@dataclass(frozen=True)
class MicroStep:
    tag: str  # names kernels built with it, e.g. "avx512_fma.fma_f32_1x16"
    llvm: str | None  # the LLVM intrinsic; None: plain fmul + fadd
    operands: tuple[StepOperand, ...]
    returns: str
    n: int  # lanes of C per step
    k: int  # k per step
    a_bits: int  # bits of one element of A
    b_bits: int
    b_order: tuple[str, str] = ("k", "n")  # B's tile layout: ("n", "k") is n-major
    adds: bool = False  # the intrinsic returns products only: add them to C
    m: int = 1  # rows of C per step (its accumulator is the m x n tile, row-major)
    vscale: int = 1  # the spec's vector length over the scalable types' minimum

    def fixed(self, role: str) -> ir.Type:
        """The operand's type, or for a scalable one the fixed vector of its tile."""
        t = self.type_of(role) if role != "C" else llvm_type(self.returns)
        return fixed_of(t, self.vscale) if isinstance(t, ScalableVectorType) else t

    def to_operand(self, b: ir.IRBuilder, value: ir.Value, role: str) -> ir.Value:
        """A fixed value of the operand's size as the operand (bitcast or inserted)."""
        t = self.type_of(role)
        if isinstance(t, ScalableVectorType):
            fixed = fixed_of(t, self.vscale)
            return to_scalable(b, value if value.type == fixed else b.bitcast(value, fixed), t)
        return value if value.type == t else b.bitcast(value, t)

    def acc_fixed(self, b: ir.IRBuilder, acc: ir.Value) -> ir.Value:
        """An accumulator as a fixed vector (a scalable one's tile lanes)."""
        if isinstance(acc.type, ScalableVectorType):
            return to_fixed(b, acc, self.m * self.n)
        return acc

    @property
    def ident(self) -> str:
        """The tag as a symbol fragment."""
        return re.sub(r"\W", "_", self.tag)

    def type_of(self, role: str) -> ir.Type:
        return llvm_type(next(o.type for o in self.operands if o.role == role))

    @property
    def acc_type(self) -> ir.VectorType:
        return llvm_type(self.returns)  # type: ignore[return-value]

    def load_a(self, b: ir.IRBuilder, tile_ptr: ir.Value) -> ir.Value:
        """The A operand of one step: the row's tile broadcast, or (m > 1) the m
        rows' tiles as packed, one after the other."""
        if self.m == 1:
            return self.broadcast_a(b, tile_ptr)
        value = b.load(tile_ptr, typ=self.fixed("A"), align=max(1, self.a_bits // 8))
        return self.to_operand(b, value, "A")

    def broadcast_a(self, b: ir.IRBuilder, tile_ptr: ir.Value) -> ir.Value:
        """The row's A tile (k elements at tile_ptr) repeated across A's operand type."""
        target = self.fixed("A")
        tile_bits = self.k * self.a_bits
        elem = target.element if isinstance(target, ir.VectorType) else target
        scalar_t = elem if type_bits(elem) == tile_bits else ir.IntType(tile_bits)
        value = b.load(tile_ptr, typ=scalar_t, align=max(1, self.a_bits // 8))
        count = type_bits(target) // tile_bits
        vector = splat(b, value, count) if count > 1 else value
        return self.to_operand(b, vector, "A")

    def load_b(self, b: ir.IRBuilder, ptr: ir.Value) -> ir.Value:
        value = b.load(ptr, typ=self.fixed("B"), align=max(1, self.b_bits // 8))
        return self.to_operand(b, value, "B")

    def call(self, b: ir.IRBuilder, acc: ir.Value, a: ir.Value, bv: ir.Value) -> ir.Value:
        """acc + a * bv (per the intrinsic's semantics), in the emit's operand order."""
        if self.llvm is None:
            return fadd(b, fmul(b, a, bv), acc)
        values = {"A": a, "B": bv, "C": acc}
        args = [values[o.role] if o.role in values else ir.Constant(llvm_type(o.type), o.const)
                for o in self.operands]
        fn = intrinsic(b.module, self.llvm, llvm_type(self.returns), [x.type for x in args])
        result = b.call(fn, args)
        if not self.adds:
            return result
        return fadd(b, acc, result) if _is_float(acc.type) else b.add(acc, result)


def _is_float(t: ir.Type) -> bool:
    elem = t.element if isinstance(t, ir.VectorType) else t
    return not isinstance(elem, ir.IntType)


def plain_f32_step(lanes: int) -> MicroStep:
    """No intrinsic: fmul + fadd with fast-math flags (LLVM contracts them into an
    FMA where the target has one)."""
    vt = f"<{lanes} x float>"
    ops = (StepOperand("A", vt), StepOperand("B", vt), StepOperand("C", vt))
    return MicroStep(f"plain{lanes}", None, ops, vt, lanes, 1, 32, 32)


def k_loop(b: ir.IRBuilder, step: MicroStep, mr: int, nv: int, nv_pack: int, a: ir.Value,
           bp: ir.Value, ksteps: ir.Value, a_prefetch: int = 0,
           b_prefetch: int = 0) -> list[list[ir.Value]]:
    """MR/m x NV accumulators over `ksteps` (>= 1) k-steps of packed panels; returns
    them as [row group][vector] (fixed vectors) (a group is the step's m rows; MR is a multiple
    of m). Pointers are byte-addressed through i8 GEPs.

    a_prefetch / b_prefetch > 0: each k-step also prefetches the A (B) panel
    that many bytes ahead (every line of a B k-step). A conv's packed weights
    are read from memory once per layer (a ResNet's do not fit the caches), and
    the hardware prefetcher alone leaves the first pass over each micro-panel
    stalled on its loads."""
    acc_t = step.acc_type
    a_step, b_step = mr * step.k * step.a_bits // 8, nv_pack * step.n * step.k * step.b_bits // 8
    pre = b.block
    body = b.append_basic_block("k.body")
    b.branch(body)
    b.position_at_end(body)
    kk = b.phi(I64, name="k")
    kk.add_incoming(i64(0), pre)
    groups = mr // step.m
    phis = [[b.phi(acc_t, name=f"acc{r}_{j}") for j in range(nv)] for r in range(groups)]
    b_row = _byte_gep(b, bp, b.mul(kk, i64(b_step)))
    b_vals = [step.load_b(b, _byte_gep(b, b_row, i64(j * b_step // nv_pack)))
              for j in range(nv)]
    a_row = _byte_gep(b, a, b.mul(kk, i64(a_step)))
    if a_prefetch:
        prefetch(b, _byte_gep(b, a_row, i64(a_prefetch)))
    for line in range(0, b_step if b_prefetch else 0, 64):
        prefetch(b, _byte_gep(b, b_row, i64(b_prefetch + line)))
    new = []
    for r in range(groups):
        a_r = step.load_a(b, _byte_gep(b, a_row, i64(r * step.m * step.k * step.a_bits // 8)))
        new.append([step.call(b, phis[r][j], a_r, b_vals[j]) for j in range(nv)])
    k_next = b.add(kk, i64(1), name="k.next", flags=("nsw",))
    latch = b.block
    kk.add_incoming(k_next, latch)
    zero = ir.Constant(acc_t, None)
    for r in range(groups):
        for j in range(nv):
            phis[r][j].add_incoming(zero, pre)
            phis[r][j].add_incoming(new[r][j], latch)
    done = b.append_basic_block("k.done")
    b.cbranch(b.icmp_signed("<", k_next, ksteps), body, done)
    b.position_at_end(done)
    return [[step.acc_fixed(b, acc) for acc in row] for row in new]


def prefetch(b: ir.IRBuilder, ptr: ir.Value) -> None:
    """A read prefetch into every cache level (a hint: never faults; targets
    without prefetch instructions drop it)."""
    i32 = ir.IntType(32)
    fn = intrinsic(b.module, "llvm.prefetch.p0", ir.VoidType(), [PTR, i32, i32, i32])
    b.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])


def _byte_gep(b: ir.IRBuilder, base: ir.Value, offset: ir.Value) -> ir.Value:
    return b.gep(base, [offset], inbounds=True, source_etype=ir.IntType(8))
