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

from ..llvm_util import F32, I1, I8, I32, I64, PTR, define, gep, i64, intrinsic, splat, vec
from .gemm_simd import prefix_mask
from .int_epilogue import IntEpilogue, requantize
from .micro_step import MicroStep, k_loop


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
    outs = [[_finish(b, tile, epi, v, accs[r][j], r, j) for j in range(tile.nv)]
            for r in range(tile.mr)]
    full = b.and_(b.icmp_signed("==", v["mr_valid"], i64(tile.mr)),
                  b.icmp_signed("==", v["nr_valid"], i64(tile.nv * tile.lanes)))
    with b.if_else(full) as (then, otherwise):
        with then:
            _store(b, tile, epi, v, outs, masked=False)
        with otherwise:
            _store(b, tile, epi, v, outs, masked=True)
    b.ret_void()
    return fn


def _finish(b: ir.IRBuilder, tile: IntTile, epi: IntEpilogue, v: dict[str, ir.Value],
            acc: ir.Value, r: int, j: int) -> ir.Value:
    n = tile.lanes

    def row(name: str) -> ir.Value:
        return splat(b, b.load(gep(b, v[name], i64(r), I32), typ=I32), n)

    def col(name: str, elem: ir.Type = I32) -> ir.Value:
        return b.load(gep(b, v[name], i64(j * n), elem), typ=vec(elem, n), align=4)

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
    n = tile.lanes
    elem = I32 if not epi.requant else I8
    for r in range(tile.mr):
        row_ptr = gep(b, v["c"], b.mul(i64(r), v["ldc"]), elem)
        if masked:
            with b.if_then(b.icmp_signed(">", v["mr_valid"], i64(r))):
                for j in range(tile.nv):
                    mask = prefix_mask(b, b.sub(v["nr_valid"], i64(j * n)), n)
                    _masked_store(b, outs[r][j], b.gep(row_ptr, [i64(j * n)],
                                                       source_etype=elem), mask)
        else:
            for j in range(tile.nv):
                b.store(outs[r][j], gep(b, row_ptr, i64(j * n), elem), align=1)


def _masked_store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, mask: ir.Value) -> None:
    n, elem = value.type.count, value.type.element
    fn = intrinsic(b.module, f"llvm.masked.store.v{n}i{elem.width}.p0", ir.VoidType(),
                   [value.type, PTR, I32, vec(I1, n)])
    b.call(fn, [value, ptr, ir.Constant(I32, 1), mask])
