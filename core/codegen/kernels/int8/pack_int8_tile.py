"""Byte-vector helpers shared by the int8 packers: masked byte loads, the
interleave of a k-step's rows into the intrinsic's tile layout, and the tile's
store with its sign flip and column sums."""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ...llvm_util import I1, I8, I32, PTR, intrinsic, vec
from ..gemm.micro_step import MicroStep


def flip_mask(n: int) -> ir.Constant:
    return ir.Constant(vec(I8, n), [0x80] * n)


@dataclass(frozen=True)
class ByteFeed:
    """How a packer turns the operand's bytes into the intrinsic's elements, and
    how it loads them."""

    flip: bool = False  # x ^ 0x80: int8 <-> uint8 + 128
    widen: str = ""  # "sext" / "zext" to the step's wider elements, "" keeps bytes
    split_masks: bool = False  # the target has no masked byte loads (see masked_load_i8)

    @property
    def tag(self) -> str:
        return (("_flip" if self.flip else "") + (f"_{self.widen}" if self.widen else "")
                + ("_split" if self.split_masks else ""))


def masked_load_i8(b: ir.IRBuilder, ptr: ir.Value, mask: ir.Value, fill: ir.Value,
                   split: bool = False) -> ir.Value:
    """Bytes at ptr where mask, else fill. `split`: for targets without masked byte
    loads (AVX2, NEON), where LLVM turns one into a branch per lane, a whole vector
    (the usual case away from edges) is one plain load and an empty one none."""
    n = mask.type.count
    vt = vec(I8, n)
    fn = intrinsic(b.module, f"llvm.masked.load.v{n}i8.p0", vt, [PTR, I32, vec(I1, n), vt])
    if not split:
        return b.call(fn, [ptr, ir.Constant(I32, 1), mask, fill])
    every = intrinsic(b.module, f"llvm.vector.reduce.and.v{n}i1", I1, [vec(I1, n)])
    some = intrinsic(b.module, f"llvm.vector.reduce.or.v{n}i1", I1, [vec(I1, n)])
    out = entry_alloca(b, vt)
    b.store(fill, out)
    with b.if_then(b.call(some, [mask])):
        with b.if_else(b.call(every, [mask])) as (then, otherwise):
            with then:
                b.store(b.load(ptr, typ=vt, align=1), out)
            with otherwise:
                b.store(b.call(fn, [ptr, ir.Constant(I32, 1), mask, fill]), out)
    return b.load(out, typ=vt)


def byte_masks_native(features: str) -> bool:
    """Does the target load bytes under a mask in one instruction?"""
    have = set(features.split(","))
    return bool(have & {"+avx512bw", "+sve", "+v"})


def ones_a(b: ir.IRBuilder, step: MicroStep) -> ir.Value:
    """A operand of all ones (elements of A's width): the step then sums B over k."""
    t = step.fixed("A")
    bits = t.count * t.element.width if isinstance(t, ir.VectorType) else t.width
    count = bits // step.a_bits
    ones = ir.Constant(vec(ir.IntType(step.a_bits), count), [1] * count)
    return step.to_operand(b, b.bitcast(ones, t), "A")


def widen(b: ir.IRBuilder, row: ir.Value, how: str, bits: int) -> ir.Value:
    """A byte vector as `bits`-bit elements: sign- ("sext") or zero- ("zext")
    extended; "" leaves it bytes."""
    if not how:
        return row
    wide = vec(ir.IntType(bits), row.type.count)
    return b.sext(row, wide) if how == "sext" else b.zext(row, wide)


def interleave(b: ir.IRBuilder, rows: list[ir.Value], order: tuple[str, str]) -> ir.Value:
    """k row vectors of n bytes -> one n*k byte tile in the intrinsic's layout."""
    n, k = rows[0].type.count, len(rows)
    if k == 1:
        return rows[0]
    joined = rows[0]
    for i in range(1, k):  # concatenate: shufflevector needs equal widths, so widen pairwise
        joined = _concat(b, joined, rows[i])
    if order == ("n", "k"):
        mask = [j * n + lane for lane in range(n) for j in range(k)]
    else:
        mask = list(range(n * k))
    return b.shuffle_vector(joined, ir.Constant(joined.type, None), ir.Constant(vec(I32, n * k),
                                                                               mask))


def _concat(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    nx, ny = x.type.count, y.type.count
    if nx != ny:
        wide = ir.Constant(vec(I32, nx), list(range(ny)) + [ny] * (nx - ny))
        y = b.shuffle_vector(y, ir.Constant(y.type, None), wide)  # pad y to x's width
    mask = list(range(nx)) + list(range(nx, nx + ny))
    return b.shuffle_vector(x, y, ir.Constant(vec(I32, nx + ny), mask))


def entry_alloca(b: ir.IRBuilder, t: ir.Type) -> ir.Value:
    """A stack slot in the entry block (mem2reg turns it into registers; inside a
    loop an alloca would grow the stack every iteration)."""
    with b.goto_entry_block():
        b.position_at_start(b.block)
        return b.alloca(t)


def store_tile(b: ir.IRBuilder, step: MicroStep, rows: list[ir.Value], k_ok: list[ir.Value],
               feed: ByteFeed, dst: ir.Value, total: ir.Value | None) -> None:
    """One B value of the panel: the k-step's rows (flipped, zero past K, widened
    to B's elements as `feed` says), interleaved and stored at dst; its column
    sums added to `total` (a slot)."""
    fixed = []
    for row, ok in zip(rows, k_ok, strict=True):
        if feed.flip:
            row = b.xor(row, flip_mask(row.type.count))
        row = b.select(ok, row, ir.Constant(row.type, None))
        fixed.append(widen(b, row, feed.widen, step.b_bits))
    tile = interleave(b, fixed, step.b_order)
    b.store(tile, dst, align=1)
    if total is not None:
        acc_t = step.acc_type
        bv = step.to_operand(b, tile, "B")
        b.store(step.call(b, b.load(total, typ=acc_t), ones_a(b, step), bv), total)
