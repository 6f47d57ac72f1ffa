"""The int8 GEMM micro-kernel: an MR x NV register tile of int32 accumulators
fed by a tensorized step (VNNI's vpdpbusd from the YAML, see micro_step.py),
then the zero-point correction and the epilogue, once per tile:

    C = acc + rowc[m] + colc[n] (+ rs[m] * cw[n]) (+ rw[m] * cs[n])
    out = C (int32) or requantize(C) (8-bit, int_epilogue.py)

rowc/colc hold everything constant (bias, K * za * zb, sums of a constant
operand times the other's zero point); the outer products are needed only
when a runtime operand's sums meet per-channel zero points of the other (rs:
row sums of A, cs: column sums of B, from the packers; cw = -zb', rw = -za').
The per-row/column arrays are padded to whole tiles, so only C's stores are
masked at an edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ...llvm_util import F32, I1, I8, I32, I64, PTR, define, gep, i64, intrinsic, splat, vec
from ..gemm.gemm_simd import prefix_mask
from ..gemm.micro_step import MicroStep, k_loop
from .int_epilogue import IntEpilogue, requantize


@dataclass(frozen=True)
class IntTile:
    mr: int
    nv: int
    nv_pack: int  # vectors per k-step in the B panel (nv < nv_pack: narrow edge panel)
    step: MicroStep
    row_outer: bool  # + rs[m] * cw[n]
    col_outer: bool  # + rw[m] * cs[n]

    @property
    def lanes(self) -> int:
        return self.step.n


def int_ukernel_params(tile: IntTile, epi: IntEpilogue) -> list[tuple[str, ir.Type]]:
    out = [("a", PTR), ("b", PTR), ("ksteps", I64), ("c", PTR), ("ldc", I64),
           ("mr_valid", I64), ("nr_valid", I64), ("rowc", PTR), ("colc", PTR)]
    if tile.row_outer:
        out += [("rs", PTR), ("cw", PTR)]
    if tile.col_outer:
        out += [("rw", PTR), ("cs", PTR)]
    if epi.requant:
        out += [("scale", PTR), ("yzp", I64)]
    return out


def get_int_ukernel(module: ir.Module, tile: IntTile, epi: IntEpilogue) -> ir.Function:
    outer = "_ro" * tile.row_outer + "_co" * tile.col_outer
    name = (f"igemm_uk_{tile.mr}x{tile.nv}p{tile.nv_pack}_{tile.step.ident}{outer}_{epi.tag}")
    if name in module.globals:
        return module.globals[name]
    params = int_ukernel_params(tile, epi)
    fn, b = define(module, name, [t for _, t in params], [n for n, _ in params])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    v = dict(zip([n for n, _ in params], fn.args, strict=True))
    accs = k_loop(b, tile.step, tile.mr, tile.nv, tile.nv_pack, v["a"], v["b"], v["ksteps"])
    outs = [[_finish(b, epi, v, piece, r, j * piece.type.count, tile)
             for j, piece in enumerate(pieces)]
            for r, pieces in enumerate(row_pieces(b, tile.step, accs, tile.mr))]
    full = b.and_(b.icmp_signed("==", v["mr_valid"], i64(tile.mr)),
                  b.icmp_signed("==", v["nr_valid"], i64(tile.nv * tile.lanes)))
    with b.if_else(full) as (then, otherwise):
        with then:
            _store(b, tile, epi, v, outs, masked=False)
        with otherwise:
            _store(b, tile, epi, v, outs, masked=True)
    b.ret_void()
    return fn


def row_pieces(b: ir.IRBuilder, step: MicroStep, accs: list[list[ir.Value]],
               mr: int) -> list[list[ir.Value]]:
    """k_loop's accumulators ([row group][vector]) as vectors of C per row, left to
    right: a one-row step's vectors as they are; an m-row step's rows extracted
    and a one-lane step's scalars gathered, into one vector per row."""
    if step.m == 1 and step.n > 1:
        return accs
    out = []
    for r in range(mr):
        group, i = divmod(r, step.m)
        parts = [_row_of(b, acc, i, step) for acc in accs[group]]
        out.append([_join(b, parts)])
    return out


def _row_of(b: ir.IRBuilder, acc: ir.Value, i: int, step: MicroStep) -> ir.Value:
    """Row i of an m x n accumulator tile, as an n-lane vector."""
    if not isinstance(acc.type, ir.VectorType):
        return b.insert_element(ir.Constant(vec(acc.type, 1), None), acc, ir.Constant(I32, 0))
    lanes = list(range(i * step.n, (i + 1) * step.n))
    return b.shuffle_vector(acc, ir.Constant(acc.type, None),
                            ir.Constant(vec(I32, step.n), lanes))


def _join(b: ir.IRBuilder, parts: list[ir.Value]) -> ir.Value:
    """Vectors concatenated, pairwise (a tree of shuffles)."""
    while len(parts) > 1:
        joined = [_concat(b, x, y) for x, y in zip(parts[::2], parts[1::2], strict=False)]
        parts = joined + parts[len(joined) * 2:]
    return parts[0]


def _concat(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    nx, ny = x.type.count, y.type.count
    if ny < nx:  # shufflevector takes equal widths: pad y (its extra lanes unused)
        y = b.shuffle_vector(y, ir.Constant(y.type, None),
                             ir.Constant(vec(I32, nx), list(range(ny)) + [0] * (nx - ny)))
    mask = list(range(nx)) + [nx + i for i in range(ny)]
    return b.shuffle_vector(x, y, ir.Constant(vec(I32, nx + ny), mask))


def _finish(b: ir.IRBuilder, epi: IntEpilogue, v: dict[str, ir.Value], acc: ir.Value,
            r: int, c0: int, tile: IntTile) -> ir.Value:
    """C's row r, columns c0.. of the tile (acc: as many lanes as it has)."""
    n = acc.type.count

    def row(name: str) -> ir.Value:
        return splat(b, b.load(gep(b, v[name], i64(r), I32), typ=I32), n)

    def col(name: str, elem: ir.Type = I32) -> ir.Value:
        return b.load(gep(b, v[name], i64(c0), elem), typ=vec(elem, n), align=4)

    x = b.add(b.add(acc, row("rowc")), col("colc"))
    if tile.row_outer:
        x = b.add(x, b.mul(row("rs"), col("cw")))
    if tile.col_outer:
        x = b.add(x, b.mul(row("rw"), col("cs")))
    if not epi.requant:
        return x
    if epi.scale == "col":
        scale = col("scale", F32)
    else:
        scale = splat(b, b.load(gep(b, v["scale"], i64(r), F32), typ=F32), n)
    return b.trunc(requantize(b, epi, x, scale, v["yzp"]), vec(I8, n))


def _store(b: ir.IRBuilder, tile: IntTile, epi: IntEpilogue, v: dict[str, ir.Value],
           outs: list[list[ir.Value]], masked: bool) -> None:
    elem = I32 if not epi.requant else I8
    for r in range(tile.mr):
        row_ptr = gep(b, v["c"], b.mul(i64(r), v["ldc"]), elem)
        if masked:
            with b.if_then(b.icmp_signed(">", v["mr_valid"], i64(r))):
                c0 = 0
                for out in outs[r]:
                    n = out.type.count
                    mask = prefix_mask(b, b.sub(v["nr_valid"], i64(c0)), n)
                    _masked_store(b, out, b.gep(row_ptr, [i64(c0)], source_etype=elem), mask)
                    c0 += n
        else:
            c0 = 0
            for out in outs[r]:
                b.store(out, gep(b, row_ptr, i64(c0), elem), align=1)
                c0 += out.type.count


def _masked_store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, mask: ir.Value) -> None:
    n, elem = value.type.count, value.type.element
    if n == 1:  # LLVM cannot scalarize a one-lane masked store: a branch instead
        with b.if_then(b.extract_element(mask, ir.Constant(I32, 0))):
            b.store(b.extract_element(value, ir.Constant(I32, 0)), ptr, align=1)
        return
    fn = intrinsic(b.module, f"llvm.masked.store.v{n}i{elem.width}.p0", ir.VoidType(),
                   [value.type, PTR, I32, vec(I1, n)])
    b.call(fn, [value, ptr, ir.Constant(I32, 1), mask])
