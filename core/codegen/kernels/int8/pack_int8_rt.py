"""Generated packers for runtime int8 operands (layouts in pack_int8.py).

B panels are built k-step by k-step: the step's k rows of NR columns are loaded
as byte vectors (from strided rows or from the im2col view of an image), their
sign bits flipped if asked, interleaved into the intrinsic's tile layout by one
shuffle, and stored. Column sums of the packed values (for the zero-point
correction) come from the intrinsic itself: the step with A = ones computes
sum_k B[k, n] in exactly the lanes the micro-kernel uses (each row of an m-row
step's tile; the first is kept).

A is the small operand: its rows are copied k bytes at a time by a scalar loop,
and its row sums by a separate loop LLVM vectorizes.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from ...llvm_util import I8, I16, I32, I64, PTR, define, for_range, gep, i64, vec
from ..gemm.gemm_simd import prefix_mask
from ..gemm.micro_step import MicroStep
from .pack_int8 import IM2COL_GEOMETRY
from .pack_int8_im2col import im2col_panels
from .pack_int8_tile import ByteFeed, entry_alloca, masked_load_i8, store_tile, widen

RowLoader = Callable[[ir.IRBuilder, ir.Value, ir.Value, int], ir.Value]
B_PARAMS = ["dst", "src", "sums", "kcur", "ncur", "n0", "pad"]


def get_pack_b_int8(module: ir.Module, step: MicroStep, nv: int, source: str, feed: ByteFeed,
                    sums: bool) -> ir.Function:
    """pack(dst, src, sums, kcur, ncur, n0, pad, *source params): columns
    [n0, n0+ncur) of B, all K = kcur rows, into panels at dst; `sums` gets the
    column sums (i32, ncur rounded up to NR) when asked. `pad` is the byte im2col
    reads outside the image (the image's zero point)."""
    name = f"pack_b_i8_{source}_{nv}x{step.ident}{feed.tag}{'_sums' if sums else ''}"
    if name in module.globals:
        return module.globals[name]
    extra = ["sbk", "sbn"] if source == "strided" else IM2COL_GEOMETRY
    names = B_PARAMS + extra
    fn, b = define(module, name, [PTR, PTR, PTR] + [I64] * (len(names) - 3), names,
                   noalias=True)
    fn.linkage = "internal"
    g = dict(zip(names, fn.args, strict=True))
    if source == "strided":
        with b.if_else(b.icmp_signed("==", g["sbn"], i64(1))) as (rows, other):
            with rows:
                _panels(b, g, step, nv, feed, sums, _strided_rows(g, True, feed.split_masks))
            with other:
                _panels(b, g, step, nv, feed, sums, _strided_rows(g, False, feed.split_masks))
    else:
        def totals_for(b: ir.IRBuilder) -> list:
            return start_sums(b, step, nv) if sums else [None] * nv

        def finish(b: ir.IRBuilder, totals: list, col0: ir.Value) -> None:
            if sums:
                finish_sums(b, step, totals, g["sums"], col0)

        im2col_panels(b, g, step, nv, feed, totals_for, finish)
    b.ret_void()
    return fn


def _panels(b: ir.IRBuilder, g: dict[str, ir.Value], step: MicroStep, nv: int, feed: ByteFeed,
            sums: bool, load_row: RowLoader) -> None:
    lanes, kk, size = step.n, step.k, step.b_bits // 8
    nr = nv * lanes
    ksteps = b.sdiv(b.add(g["kcur"], i64(kk - 1)), i64(kk))
    panels = b.sdiv(b.add(g["ncur"], i64(nr - 1)), i64(nr))
    with for_range(b, 0, panels, name="p") as p:
        col0 = b.mul(p, i64(nr))
        panel = gep(b, g["dst"], b.mul(col0, b.mul(ksteps, i64(kk * size))), I8)
        totals = start_sums(b, step, nv) if sums else [None] * nv
        with for_range(b, 0, ksteps, name="ks") as ks:
            ks_rows = [b.add(b.mul(ks, i64(kk)), i64(r)) for r in range(kk)]
            k_ok = [b.icmp_signed("<", k, g["kcur"]) for k in ks_rows]
            for v in range(nv):
                first = b.add(col0, i64(v * lanes))
                rows = [load_row(b, k, first, lanes) for k in ks_rows]
                at = b.add(b.mul(ks, i64(nv * lanes * kk * size)), i64(v * lanes * kk * size))
                store_tile(b, step, rows, k_ok, feed, gep(b, panel, at, I8), totals[v])
        if sums:
            finish_sums(b, step, totals, g["sums"], col0)


def start_sums(b: ir.IRBuilder, step: MicroStep, nv: int) -> list[ir.Value]:
    """Zeroed slots for the column sums of a panel's NV values."""
    slots = [entry_alloca(b, step.acc_type) for _ in range(nv)]
    for slot in slots:
        b.store(ir.Constant(step.acc_type, None), slot)
    return slots


def finish_sums(b: ir.IRBuilder, step: MicroStep, totals: list, sums: ir.Value,
                col0: ir.Value) -> None:
    for v, slot in enumerate(totals):
        ptr = gep(b, sums, b.add(col0, i64(v * step.n)), I32)
        total = step.acc_fixed(b, b.load(slot, typ=step.acc_type))
        if step.m > 1:  # every row of the m x n tile holds the sums (A was all ones)
            total = b.shuffle_vector(total, ir.Constant(total.type, None),
                                     ir.Constant(vec(I32, step.n), list(range(step.n))))
        b.store(total, ptr, align=4)


def _strided_rows(g: dict[str, ir.Value], contiguous: bool, split: bool) -> RowLoader:
    def load_row(b: ir.IRBuilder, k: ir.Value, first: ir.Value, lanes: int) -> ir.Value:
        valid = prefix_mask(b, b.sub(g["ncur"], first), lanes)
        k_safe = b.select(b.icmp_signed("<", k, g["kcur"]), k, i64(0))
        row = gep(b, g["src"], b.mul(k_safe, g["sbk"]), I8)
        col = b.add(g["n0"], first)
        if contiguous:
            ptr = b.gep(row, [col], source_etype=I8)
            return masked_load_i8(b, ptr, valid, ir.Constant(vec(I8, lanes), None), split)
        return _lanes(b, lanes, lambda lane: (b.mul(b.add(col, lane), g["sbn"]),
                                              b.icmp_signed("<", b.add(first, lane), g["ncur"])),
                      row, i64(0))

    return load_row


def _lanes(b: ir.IRBuilder, lanes: int,
           source: Callable[[ir.Value], tuple[ir.Value, ir.Value]], base: ir.Value,
           fill: ir.Value) -> ir.Value:
    """A byte vector built lane by lane: base[offset] where ok, else `fill`."""
    vt = vec(I8, lanes)
    out = ir.Constant(vt, None)
    pad = b.trunc(fill, I8)
    for lane in range(lanes):
        offset, ok = source(i64(lane))
        safe = b.select(ok, offset, i64(0))
        value = b.select(ok, b.load(gep(b, base, safe, I8), typ=I8), pad)
        out = b.insert_element(out, value, ir.Constant(I32, lane))
    return out


def get_pack_a_int8(module: ir.Module, mr: int, kstep: int, flip: bool, sums: bool,
                    signed: bool, wide: str = "") -> ir.Function:
    """pack(dst, src, sums, sam, sak, mcur, K): rows [0, mcur) of A into
    [mcur/MR][Kp/k][MR][k] panels, zero padded; `sums` gets each row's sum of
    the packed values (signed or not, as the intrinsic reads them). `wide`
    ("sext", "zext") stores the bytes as int16. Rows with contiguous k
    (sak == 1) move k bytes per load."""
    name = f"pack_a_i8_{mr}x{kstep}{'_flip' if flip else ''}{'_sums' if sums else ''}" \
           f"{'_s' if signed else '_u'}{'_' + wide if wide else ''}"
    if name in module.globals:
        return module.globals[name]
    names = ["dst", "src", "sums", "sam", "sak", "mcur", "K"]
    fn, b = define(module, name, [PTR, PTR, PTR] + [I64] * 4, names, noalias=True)
    fn.linkage = "internal"
    g = dict(zip(names, fn.args, strict=True))
    size = 2 if wide else 1
    ksteps = b.sdiv(b.add(g["K"], i64(kstep - 1)), i64(kstep))
    rows = b.mul(b.sdiv(b.add(g["mcur"], i64(mr - 1)), i64(mr)), i64(mr))
    with for_range(b, 0, rows, name="m") as m:
        panel = gep(b, g["dst"], b.mul(b.sdiv(m, i64(mr)), b.mul(ksteps, i64(mr * kstep * size))),
                    I8)
        row_dst = gep(b, panel, b.mul(b.srem(m, i64(mr)), i64(kstep * size)), I8)
        valid = b.icmp_signed("<", m, g["mcur"])
        src_row = gep(b, g["src"], b.mul(b.select(valid, m, i64(0)), g["sam"]), I8)
        fast = b.and_(valid, b.icmp_signed("==", g["sak"], i64(1)))
        full = b.select(fast, b.sdiv(g["K"], i64(kstep)), i64(0))
        _copy_steps(b, row_dst, src_row, full, mr, kstep, flip, wide)
        with for_range(b, b.mul(full, i64(kstep)), b.mul(ksteps, i64(kstep)), name="k") as k:
            ok = b.and_(valid, b.icmp_signed("<", k, g["K"]))
            value = b.load(gep(b, src_row, b.select(ok, b.mul(k, g["sak"]), i64(0)), I8), typ=I8)
            if flip:
                value = b.xor(value, ir.Constant(I8, 0x80))
            value = _widen_scalar(b, b.select(ok, value, ir.Constant(I8, 0)), wide)
            at = b.add(b.mul(b.sdiv(k, i64(kstep)), i64(mr * kstep)), b.srem(k, i64(kstep)))
            b.store(value, gep(b, row_dst, at, value.type))
        if sums:
            _row_sum(b, g, m, valid, src_row, flip, signed)
    b.ret_void()
    return fn


def _widen_scalar(b: ir.IRBuilder, value: ir.Value, wide: str) -> ir.Value:
    if not wide:
        return value
    return b.sext(value, I16) if wide == "sext" else b.zext(value, I16)


def _copy_steps(b: ir.IRBuilder, dst: ir.Value, src: ir.Value, count: ir.Value, mr: int,
                kstep: int, flip: bool, wide: str) -> None:
    """`count` whole k-steps of one row: kstep bytes per load, one store."""
    word = ir.IntType(8 * kstep)
    size = 2 if wide else 1
    with for_range(b, 0, count, name="w") as w:
        value = b.load(gep(b, src, b.mul(w, i64(kstep)), I8), typ=word, align=1)
        if flip:
            value = b.xor(value, ir.Constant(word, int("80" * kstep, 16)))
        if wide:
            value = widen(b, b.bitcast(value, vec(I8, kstep)), wide, 16)
        b.store(value, gep(b, dst, b.mul(w, i64(mr * kstep * size)), I8), align=1)


def _row_sum(b: ir.IRBuilder, g: dict[str, ir.Value], m: ir.Value, valid: ir.Value,
             src_row: ir.Value, flip: bool, signed: bool) -> None:
    total = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), total)
    count = b.select(valid, g["K"], i64(0))
    with for_range(b, 0, count, name="s") as k:
        value = b.load(gep(b, src_row, b.mul(k, g["sak"]), I8), typ=I8)
        if flip:
            value = b.xor(value, ir.Constant(I8, 0x80))
        wide = b.sext(value, I32) if signed else b.zext(value, I32)
        b.store(b.add(b.load(total, typ=I32), wide), total)
    b.store(b.load(total, typ=I32), gep(b, g["sums"], m, I32))
