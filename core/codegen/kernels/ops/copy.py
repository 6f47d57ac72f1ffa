"""Data movement of any element type: strided n-d copies (Concat, Transpose) and Pad.

Kernels move raw bits (iN for N-byte elements), so one kernel serves every dtype
of a size. Shapes arrive as small i64 plan tables built at compile time: up to
MAX_OUTER_DIMS outer dims walked by nested loops (unused ones have count 1)
around one inner dim the kernel moves `lanes` elements at a time.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_rows
from ..support.vloop import define_kernel, nested_loops, tail_mask, vector_loop, vload, vstore

MAX_OUTER_DIMS = 5
COPY_COLUMNS = 3  # per outer dim: count, src stride, dst stride (elements)
PAD_COLUMNS = 3  # per outer dim: count, offset of its index map in `maps`, src stride


def _elem(elem_bytes: int) -> ir.IntType:
    assert elem_bytes in (1, 2, 4, 8)
    return ir.IntType(8 * elem_bytes)


def _lanes(target: CpuTarget, elem_bytes: int) -> int:
    return max(1, target.vector_bits // (8 * elem_bytes))


def _plan_entry(b: ir.IRBuilder, plan: ir.Value, columns: int, dim: int, col: int) -> ir.Value:
    return U.load(b, plan, U.i64(dim * columns + col), U.I64)


def strided_copy_kernel(elem_bytes: int, gather: bool = False) -> Kernel:
    """dst[outer..., j] = src[outer... (src strides), j * s] for j < n:
    (src, dst, plan, n, s). plan is i64 [MAX_OUTER_DIMS, COPY_COLUMNS].

    gather=False requires s == 1 (contiguous rows: plain vector loads);
    gather=True reads the inner dim with stride s (a transposition) by gathers.
    """
    name = f"copy_nd_b{elem_bytes}{'_gather' if gather else ''}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem, lanes = _elem(elem_bytes), _lanes(target, elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.PTR, U.I64, U.I64],
                              ["src", "dst", "plan", "n", "s"])

        def row(b: ir.IRBuilder, args: list[ir.Value], idx: list[ir.Value], start: ir.Value,
                count: ir.Value) -> None:
            src, dst, plan, _, s = args
            src_off, dst_off = U.i64(0), start
            for d, i in enumerate(idx):
                src_off = b.add(src_off, b.mul(i, _plan_entry(b, plan, COPY_COLUMNS, d, 1)))
                dst_off = b.add(dst_off, b.mul(i, _plan_entry(b, plan, COPY_COLUMNS, d, 2)))
            src_off = b.add(src_off, b.mul(start, s) if gather else start)

            def body(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
                if gather:
                    v = _gather(b, src, b.add(src_off, b.mul(j, s)), s, lanes, elem, count)
                else:
                    v = vload(b, src, b.add(src_off, j), lanes, count, elem)
                vstore(b, v, dst, b.add(dst_off, j), count)

            vector_loop(b, count, lanes, body)

        parallel_rows(b, target.threads, name, list(fn.args), _copy_counts, fn.args[3], row)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, PTR, I64, I64), build)


def _copy_counts(b: ir.IRBuilder, args: list[ir.Value]) -> list[ir.Value]:
    return [_plan_entry(b, args[2], COPY_COLUMNS, d, 0) for d in range(MAX_OUTER_DIMS)]


def _gather(b: ir.IRBuilder, base: ir.Value, start: ir.Value, stride: ir.Value, lanes: int,
            elem: ir.IntType, count: ir.Value | None) -> ir.Value:
    """base[start + stride * k] for k < lanes (llvm.masked.gather)."""
    nbytes = elem.width // 8
    iv = U.vec(U.I64, lanes)
    offsets = b.mul(ir.Constant(iv, list(range(lanes))), U.splat(b, b.mul(stride, U.i64(nbytes)),
                                                                 lanes))
    first = b.ptrtoint(U.gep(b, base, start, elem), U.I64)
    # llvmlite's gep cannot type a vector of pointers, hence the integer round trip
    ptrs = b.inttoptr(b.add(U.splat(b, first, lanes), offsets), ir.VectorType(U.PTR, lanes))
    vt, mt = U.vec(elem, lanes), U.vec(U.I1, lanes)
    fn = U.intrinsic(b.module, f"llvm.masked.gather.v{lanes}i{elem.width}.v{lanes}p0", vt,
                     [ir.VectorType(U.PTR, lanes), U.I32, mt, vt])
    mask = ir.Constant(mt, [1] * lanes) if count is None else tail_mask(b, count, lanes)
    return b.call(fn, [ptrs, ir.Constant(U.I32, nbytes), mask, ir.Constant(vt, None)])


# Transpose tiles are 4 x 4 to 16 x 16 elements: a target whose vectors hold one
# element (Cortex-M, wasm32 without SIMD) still moves 4 x 4 tiles, in scalars.
TILE_MIN_LANES, TILE_MAX_LANES = 4, 16


def transpose_tiles_kernel(elem_bytes: int) -> Kernel:
    """dst[outer..., r, c] = src[outer... (src strides), c * s + r] for r < rows, c < cols:
    (src, dst, plan, rows, cols, s). The output is contiguous; plan as for
    strided_copy_kernel, for the dims before the last two.

    Square tiles are read as rows of src (contiguous along r), transposed in
    registers by a perfect-shuffle network (log2(lanes) rounds of interleaves)
    and written as rows of dst. Edge tiles use the same code with masks.
    """
    name = f"transpose_tiles_b{elem_bytes}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = _elem(elem_bytes)
        lanes = min(max(_lanes(target, elem_bytes), TILE_MIN_LANES), TILE_MAX_LANES)
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.PTR, U.I64, U.I64, U.I64],
                              ["src", "dst", "plan", "rows", "cols", "s"])
        src, dst, plan, rows, cols, s = fn.args
        counts = [_plan_entry(b, plan, COPY_COLUMNS, d, 0) for d in range(MAX_OUTER_DIMS)]
        tiles_r = b.sdiv(b.add(rows, U.i64(lanes - 1)), U.i64(lanes))
        tiles_c = b.sdiv(b.add(cols, U.i64(lanes - 1)), U.i64(lanes))
        with nested_loops(b, [*counts, tiles_r, tiles_c]) as idx:
            *outer, tr, tc = idx
            src_off, dst_off = U.i64(0), U.i64(0)
            for d, i in enumerate(outer):
                src_off = b.add(src_off, b.mul(i, _plan_entry(b, plan, COPY_COLUMNS, d, 1)))
                dst_off = b.add(dst_off, b.mul(i, _plan_entry(b, plan, COPY_COLUMNS, d, 2)))
            r0, c0 = b.mul(tr, U.i64(lanes)), b.mul(tc, U.i64(lanes))
            tile = _Tile(elem, lanes, b.add(src_off, b.add(b.mul(c0, s), r0)), s,
                         b.add(dst_off, b.add(b.mul(r0, cols), c0)), cols)
            n_r = U.smin(b, b.sub(rows, r0), U.i64(lanes))
            n_c = U.smin(b, b.sub(cols, c0), U.i64(lanes))
            full = b.and_(b.icmp_signed("==", n_r, U.i64(lanes)),
                          b.icmp_signed("==", n_c, U.i64(lanes)))
            with b.if_else(full) as (whole, edge):
                with whole:
                    tile.emit(b, src, dst, None, None)
                with edge:
                    tile.emit(b, src, dst, n_r, n_c)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, PTR, I64, I64, I64), build)


class _Tile:
    """One lanes x lanes tile: src rows at src_at + i*src_step, dst rows at dst_at + j*dst_step."""

    def __init__(self, elem: ir.IntType, lanes: int, src_at: ir.Value, src_step: ir.Value,
                 dst_at: ir.Value, dst_step: ir.Value) -> None:
        self.elem, self.lanes = elem, lanes
        self.src_at, self.src_step, self.dst_at, self.dst_step = src_at, src_step, dst_at, dst_step

    def emit(self, b: ir.IRBuilder, src: ir.Value, dst: ir.Value, n_r: ir.Value | None,
             n_c: ir.Value | None) -> None:
        """n_r, n_c: valid rows / columns of an edge tile (None: a whole tile)."""
        lanes, zero = self.lanes, U.i64(0)

        def count(k: int, limit: ir.Value | None, valid: ir.Value | None) -> ir.Value | None:
            # lanes to touch in vector k: `valid` if k < limit, else none
            if limit is None:
                return None
            return b.select(b.icmp_signed("<", U.i64(k), limit), valid, zero)

        vectors = [vload(b, src, b.add(self.src_at, b.mul(U.i64(i), self.src_step)), lanes,
                         count(i, n_c, n_r), self.elem) for i in range(lanes)]
        for j, v in enumerate(_transpose(b, vectors)):
            vstore(b, v, dst, b.add(self.dst_at, b.mul(U.i64(j), self.dst_step)),
                   count(j, n_r, n_c))


def _transpose(b: ir.IRBuilder, vectors: list[ir.Value]) -> list[ir.Value]:
    """Transpose n vectors of n lanes: log2(n) rounds pairing vector j with j + n/2
    into the interleaves of their low and high halves (a perfect shuffle)."""
    n = len(vectors)
    low = ir.Constant(U.vec(U.I32, n), [k for j in range(n // 2) for k in (j, n + j)])
    high = ir.Constant(U.vec(U.I32, n), [k for j in range(n // 2, n) for k in (j, n + j)])
    for _ in range(n.bit_length() - 1):
        nxt = []
        for j in range(n // 2):
            p, q = vectors[j], vectors[j + n // 2]
            nxt += [b.shuffle_vector(p, q, low), b.shuffle_vector(p, q, high)]
        vectors = nxt
    return vectors


PAD_PARAMS = ("w_out", "copy_lo", "copy_hi", "left", "value")


def pad_kernel(elem_bytes: int) -> Kernel:
    """Pad with index maps: (src, dst, maps, plan, last_map, *PAD_PARAMS).

    Output row r (outer index o0..o4) comes from input row sum(maps[d][o_d] * stride_d),
    or is all `value` if some maps[d][o_d] < 0 (constant padding). Within a row,
    columns [copy_lo, copy_hi) copy src[row, j - left] as vectors; the others read
    src[row, last_map[j]], or `value` where last_map[j] < 0. `value` holds the pad
    constant's bits. Maps encode the mode (constant / edge / reflect / wrap).
    """
    name = f"pad_nd_b{elem_bytes}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem, lanes = _elem(elem_bytes), _lanes(target, elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 5 + [U.I64] * len(PAD_PARAMS),
                              ["src", "dst", "maps", "plan", "last_map", *PAD_PARAMS])
        src, dst, maps, plan, last_map, w_out, copy_lo, copy_hi, left, value = fn.args
        fill = b.trunc(value, elem) if elem.width < 64 else value
        counts = [_plan_entry(b, plan, PAD_COLUMNS, d, 0) for d in range(MAX_OUTER_DIMS)]
        with nested_loops(b, counts) as idx:
            src_row, valid, row = U.i64(0), ir.Constant(U.I1, 1), U.i64(0)
            for d, i in enumerate(idx):
                mapped = U.load(b, maps, b.add(_plan_entry(b, plan, PAD_COLUMNS, d, 1), i), U.I64)
                valid = b.and_(valid, b.icmp_signed(">=", mapped, U.i64(0)))
                src_row = b.add(src_row, b.mul(mapped, _plan_entry(b, plan, PAD_COLUMNS, d, 2)))
                row = b.add(b.mul(row, counts[d]), i)
            dst_row = b.mul(row, w_out)
            with b.if_else(valid) as (copy_row, fill_row):
                with copy_row:
                    rows = (src, dst, last_map, src_row, dst_row, fill)
                    _pad_borders(b, rows, U.i64(0), copy_lo)
                    _copy_middle(b, rows, copy_lo, copy_hi, left, lanes)
                    _pad_borders(b, rows, copy_hi, w_out)
                with fill_row:
                    splat = U.splat(b, fill, lanes)
                    vector_loop(b, w_out, lanes, lambda b, j, count: vstore(
                        b, splat, dst, b.add(dst_row, j), count), name="fill")
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 5 + (I64,) * len(PAD_PARAMS), build)


def _pad_borders(b: ir.IRBuilder, rows, start: ir.Value, stop: ir.Value) -> None:
    src, dst, last_map, src_row, dst_row, fill = rows
    with U.for_range(b, start, stop, name="border") as j:
        mapped = U.load(b, last_map, j, U.I64)
        inside = b.icmp_signed(">=", mapped, U.i64(0))
        safe = b.select(inside, mapped, U.i64(0))  # never read outside the source row
        v = U.load(b, src, b.add(src_row, safe), fill.type)
        U.store(b, b.select(inside, v, fill), dst, b.add(dst_row, j))


def _copy_middle(b: ir.IRBuilder, rows, lo: ir.Value, hi: ir.Value, left: ir.Value,
                 lanes: int) -> None:
    src, dst, _, src_row, dst_row, fill = rows
    src_start = b.sub(b.add(src_row, lo), left)
    dst_start = b.add(dst_row, lo)

    def body(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
        v = vload(b, src, b.add(src_start, j), lanes, count, fill.type)
        vstore(b, v, dst, b.add(dst_start, j), count)

    vector_loop(b, b.sub(hi, lo), lanes, body, name="mid")
