"""Generated packers for runtime int8 operands (layouts in pack_int8.py).

B panels are built k-step by k-step: the step's k rows of NR columns are loaded
as byte vectors (from strided rows or from the im2col view of an image), their
sign bits flipped if asked, interleaved into the intrinsic's tile layout by one
shuffle, and stored. Column sums of the packed values (for the zero-point
correction) come from the intrinsic itself: the step with A = ones computes
sum_k B[k, n] in exactly the lanes the micro-kernel uses.

A is the small operand: its rows are copied k bytes at a time by a scalar loop,
and its row sums by a separate loop LLVM vectorizes.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from ..llvm_util import I1, I8, I32, I64, PTR, define, for_range, gep, i64, intrinsic, vec
from .gemm_simd import prefix_mask
from .micro_step import MicroStep
from .pack_int8 import IM2COL_GEOMETRY, im2col_source

RowLoader = Callable[[ir.IRBuilder, ir.Value, ir.Value, int], ir.Value]
B_PARAMS = ["dst", "src", "sums", "kcur", "ncur", "n0", "pad"]


def flip_mask(n: int) -> ir.Constant:
    return ir.Constant(vec(I8, n), [0x80] * n)


def masked_load_i8(b: ir.IRBuilder, ptr: ir.Value, mask: ir.Value, fill: ir.Value) -> ir.Value:
    n = mask.type.count
    vt = vec(I8, n)
    fn = intrinsic(b.module, f"llvm.masked.load.v{n}i8.p0", vt, [PTR, I32, vec(I1, n), vt])
    return b.call(fn, [ptr, ir.Constant(I32, 1), mask, fill])


def get_pack_b_int8(module: ir.Module, step: MicroStep, nv: int, source: str, flip: bool,
                    sums: bool) -> ir.Function:
    """pack(dst, src, sums, kcur, ncur, n0, pad, *source params): columns
    [n0, n0+ncur) of B, all K = kcur rows, into panels at dst; `sums` gets the
    column sums (i32, ncur rounded up to NR) when asked. `pad` is the byte im2col
    reads outside the image (the image's zero point)."""
    name = f"pack_b_i8_{source}_{nv}x{step.ident}{'_flip' if flip else ''}{'_sums' if sums else ''}"
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
                _panels(b, g, step, nv, flip, sums, _strided_rows(g, contiguous=True))
            with other:
                _panels(b, g, step, nv, flip, sums, _strided_rows(g, contiguous=False))
    else:
        _panels(b, g, step, nv, flip, sums, _im2col_rows(g))
    b.ret_void()
    return fn


def _panels(b: ir.IRBuilder, g: dict[str, ir.Value], step: MicroStep, nv: int, flip: bool,
            sums: bool, load_row: RowLoader) -> None:
    lanes, kk = step.n, step.k
    nr = nv * lanes
    tile_bytes = lanes * kk
    ksteps = b.sdiv(b.add(g["kcur"], i64(kk - 1)), i64(kk))
    panels = b.sdiv(b.add(g["ncur"], i64(nr - 1)), i64(nr))
    acc_t = step.acc_type
    ones = _ones_a(b, step)
    with for_range(b, 0, panels, name="p") as p:
        col0 = b.mul(p, i64(nr))
        panel = gep(b, g["dst"], b.mul(col0, b.mul(ksteps, i64(kk))), I8)
        totals = [entry_alloca(b, acc_t) for _ in range(nv)] if sums else []
        for t in totals:
            b.store(ir.Constant(acc_t, None), t)
        with for_range(b, 0, ksteps, name="ks") as ks:
            for v in range(nv):
                first = b.add(col0, i64(v * lanes))
                rows = []
                for r in range(kk):
                    k = b.add(b.mul(ks, i64(kk)), i64(r))
                    row = load_row(b, k, first, lanes)
                    if flip:
                        row = b.xor(row, flip_mask(lanes))
                    k_ok = b.icmp_signed("<", k, g["kcur"])
                    rows.append(b.select(k_ok, row, ir.Constant(row.type, None)))
                tile = _interleave(b, rows, step.b_order)
                at = b.add(b.mul(ks, i64(nv * tile_bytes)), i64(v * tile_bytes))
                b.store(tile, gep(b, panel, at, I8), align=1)
                if sums:
                    bv = b.bitcast(tile, step.type_of("B"))
                    b.store(step.call(b, b.load(totals[v], typ=acc_t), ones, bv), totals[v])
        for v, t in enumerate(totals):
            ptr = gep(b, g["sums"], b.add(col0, i64(v * lanes)), I32)
            b.store(b.load(t, typ=acc_t), ptr, align=4)


def _ones_a(b: ir.IRBuilder, step: MicroStep) -> ir.Value:
    """A operand of all ones: the step then sums B over k."""
    t = step.type_of("A")
    bits = t.count * t.element.width if isinstance(t, ir.VectorType) else t.width
    ones = ir.Constant(vec(I8, bits // 8), [1] * (bits // 8))
    return b.bitcast(ones, t)


def _interleave(b: ir.IRBuilder, rows: list[ir.Value], order: tuple[str, str]) -> ir.Value:
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


def _strided_rows(g: dict[str, ir.Value], contiguous: bool) -> RowLoader:
    def load_row(b: ir.IRBuilder, k: ir.Value, first: ir.Value, lanes: int) -> ir.Value:
        valid = prefix_mask(b, b.sub(g["ncur"], first), lanes)
        k_safe = b.select(b.icmp_signed("<", k, g["kcur"]), k, i64(0))
        row = gep(b, g["src"], b.mul(k_safe, g["sbk"]), I8)
        col = b.add(g["n0"], first)
        if contiguous:
            ptr = b.gep(row, [col], source_etype=I8)
            return masked_load_i8(b, ptr, valid, ir.Constant(vec(I8, lanes), None))
        return _lanes(b, lanes, lambda lane: (b.mul(b.add(col, lane), g["sbn"]),
                                              b.icmp_signed("<", b.add(first, lane), g["ncur"])),
                      row, i64(0))

    return load_row


def _im2col_rows(g: dict[str, ir.Value]) -> RowLoader:
    """Row k of the im2col view, one byte per lane (pixels n0+first+lane)."""
    def load_row(b: ir.IRBuilder, k: ir.Value, first: ir.Value, lanes: int) -> ir.Value:
        def source(lane: ir.Value) -> tuple[ir.Value, ir.Value]:
            pixel = b.add(b.add(g["n0"], first), lane)
            offset, inside = im2col_source(b, g, k, pixel)
            return offset, inside

        return _lanes(b, lanes, source, g["src"], g["pad"])

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
                    signed: bool) -> ir.Function:
    """pack(dst, src, sums, sam, sak, mcur, K): rows [0, mcur) of A into
    [mcur/MR][Kp/k][MR][k] panels, zero padded; `sums` gets each row's sum of
    the packed values (signed or not, as the intrinsic reads them). Rows with
    contiguous k (sak == 1) move k bytes per load."""
    name = f"pack_a_i8_{mr}x{kstep}{'_flip' if flip else ''}{'_sums' if sums else ''}" \
           f"{'_s' if signed else '_u'}"
    if name in module.globals:
        return module.globals[name]
    names = ["dst", "src", "sums", "sam", "sak", "mcur", "K"]
    fn, b = define(module, name, [PTR, PTR, PTR] + [I64] * 4, names, noalias=True)
    fn.linkage = "internal"
    g = dict(zip(names, fn.args, strict=True))
    ksteps = b.sdiv(b.add(g["K"], i64(kstep - 1)), i64(kstep))
    rows = b.mul(b.sdiv(b.add(g["mcur"], i64(mr - 1)), i64(mr)), i64(mr))
    with for_range(b, 0, rows, name="m") as m:
        panel = gep(b, g["dst"], b.mul(b.sdiv(m, i64(mr)), b.mul(ksteps, i64(mr * kstep))), I8)
        row_dst = gep(b, panel, b.mul(b.srem(m, i64(mr)), i64(kstep)), I8)
        valid = b.icmp_signed("<", m, g["mcur"])
        src_row = gep(b, g["src"], b.mul(b.select(valid, m, i64(0)), g["sam"]), I8)
        fast = b.and_(valid, b.icmp_signed("==", g["sak"], i64(1)))
        full = b.select(fast, b.sdiv(g["K"], i64(kstep)), i64(0))
        _copy_steps(b, row_dst, src_row, full, mr, kstep, flip)
        with for_range(b, b.mul(full, i64(kstep)), b.mul(ksteps, i64(kstep)), name="k") as k:
            ok = b.and_(valid, b.icmp_signed("<", k, g["K"]))
            value = b.load(gep(b, src_row, b.select(ok, b.mul(k, g["sak"]), i64(0)), I8), typ=I8)
            if flip:
                value = b.xor(value, ir.Constant(I8, 0x80))
            value = b.select(ok, value, ir.Constant(I8, 0))
            at = b.add(b.mul(b.sdiv(k, i64(kstep)), i64(mr * kstep)), b.srem(k, i64(kstep)))
            b.store(value, gep(b, row_dst, at, I8))
        if sums:
            _row_sum(b, g, m, valid, src_row, flip, signed)
    b.ret_void()
    return fn


def _copy_steps(b: ir.IRBuilder, dst: ir.Value, src: ir.Value, count: ir.Value, mr: int,
                kstep: int, flip: bool) -> None:
    """`count` whole k-steps of one row: kstep bytes per load and store."""
    word = ir.IntType(8 * kstep)
    with for_range(b, 0, count, name="w") as w:
        value = b.load(gep(b, src, b.mul(w, i64(kstep)), I8), typ=word, align=1)
        if flip:
            value = b.xor(value, ir.Constant(word, int("80" * kstep, 16)))
        b.store(value, gep(b, dst, b.mul(w, i64(mr * kstep)), I8), align=1)


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


def entry_alloca(b: ir.IRBuilder, t: ir.Type) -> ir.Value:
    """A stack slot in the entry block (mem2reg turns it into registers; inside a
    loop an alloca would grow the stack every iteration)."""
    with b.goto_entry_block():
        b.position_at_start(b.block)
        return b.alloca(t)
