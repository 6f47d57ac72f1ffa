"""The register-tiled fp32 GEMM micro-kernel (BLIS style).

It computes one MR x NR tile of C from a packed A micro-panel (for each k, MR
consecutive values of A's column k) and a packed B micro-panel (for each k, NR
consecutive values of B's row k):

    acc[r][j] = step(acc[r][j], splat(A[k, r]), B[k, j*lanes : (j+1)*lanes])

where the step is the intrinsic the target's YAML declares for it (llvm.fma.v16f32
for avx512_fma; see micro_step.py and tensorize/), or plain fmul + fadd.

MR x NV accumulators live in vector registers for the whole K loop (on
AVX-512: 8 x 3 zmm + 3 B vectors + 1 broadcast = 28 of 32 registers). The tile
is then written once per K block:
- `first` K block: C = acc (C may hold garbage), otherwise C += acc;
- `last` K block: the fused epilogue (bias, residual, clip) is applied.
Full tiles use plain vector stores; edge tiles (fewer valid rows or columns)
spill the accumulators to a small stack tile and copy the valid part with
masked loads/stores, so memory outside C is never touched. A transposed
(column-major) C is written column by column from the spilled tile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import llvmlite.ir as ir

from ...llvm_util import (
    F32,
    I1,
    I32,
    I64,
    PTR,
    define,
    fadd,
    for_range,
    i64,
    load_vec,
    store_vec,
    vec,
)
from .gemm_epilogue import Epilogue, EpilogueValues
from .gemm_simd import gather, masked_load, masked_store, prefix_mask, raw_gep, stack_floats
from .micro_step import MicroStep, k_loop, plain_f32_step

# How far ahead the K loop prefetches its panels: for A about 64 k-steps of an
# 8-row panel, more than a memory latency of FMA work (measured on resnet50's
# convs: 512 B helps A little, 1-4 KB alike; B panels, 3 lines a k-step, want
# 2-4 KB, 1 KB is worse than none).
PREFETCH_BYTES = 2048


@dataclass(frozen=True)
class MicroTile:
    mr: int  # rows of C per tile = values of A per k in a packed A panel
    nv: int  # vectors of C computed per tile row
    nv_pack: int  # vectors per k in a packed B panel (nv < nv_pack for a narrow edge panel)
    lanes: int  # f32 lanes per vector
    step: MicroStep | None = field(default=None)  # None: the plain step
    # Prefetch the B panel too: B is constant (weights) that streams from memory,
    # e.g. a conv on a small image computed transposed (A, always prefetched,
    # is then the packed image).
    b_prefetch: bool = False
    # bytes ahead the K loop prefetches its panels (a tuning knob; 0: none)
    prefetch: int = PREFETCH_BYTES

    @property
    def micro_step(self) -> MicroStep:
        return self.step or plain_f32_step(self.lanes)

    @property
    def nr(self) -> int:
        return self.nv * self.lanes

    @property
    def nr_pack(self) -> int:
        return self.nv_pack * self.lanes


UKERNEL_PARAMS = ["a", "b", "kc", "c", "ldc", "mr_valid", "nr_valid", "first", "last"]
_LLVM_KIND = {"ptr": PTR, "i64": I64, "f32": F32}


def ukernel_name(tile: MicroTile, epi: Epilogue) -> str:
    step = f"_{tile.step.ident}" if tile.step else ""
    pf = "_pfb" if tile.b_prefetch else ""
    pf += f"_pf{tile.prefetch}" if tile.prefetch != PREFETCH_BYTES else ""
    return f"gemm_uk_f32_{tile.mr}x{tile.nv}v{tile.lanes}p{tile.nv_pack}_{epi.tag}{step}{pf}"


def get_ukernel(module: ir.Module, tile: MicroTile, epi: Epilogue) -> ir.Function:
    """The micro-kernel for (tile, epilogue) in `module`, defined on first use.

    Signature: (a, b, kc >= 1, c, ldc, mr_valid, nr_valid, first, last, *epilogue).
    """
    name = ukernel_name(tile, epi)
    if name in module.globals:
        return module.globals[name]
    types = [PTR, PTR, I64, PTR, I64, I64, I64, I64, I64]
    types += [_LLVM_KIND[k] for _, k in epi.params()]
    names = UKERNEL_PARAMS + [n for n, _ in epi.params()]
    fn, b = define(module, name, types, names, noalias=False)
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # keeps the hot loop one clean, inspectable function
    args = dict(zip(names, fn.args, strict=True))
    epi_values = EpilogueValues(epi, {n: args[n] for n, _ in epi.params()})
    spill = stack_floats(b, tile.mr * tile.nr, "spill")
    accs = k_loop(b, tile.micro_step, tile.mr, tile.nv, tile.nv_pack, args["a"], args["b"],
                  args["kc"], a_prefetch=tile.prefetch,
                  b_prefetch=tile.prefetch if tile.b_prefetch else 0)
    if epi.transposed:
        _store_transposed_tile(b, tile, accs, args, epi_values, spill)
        b.ret_void()
        return fn
    full = b.and_(b.icmp_signed("==", args["mr_valid"], i64(tile.mr)),
                  b.icmp_signed("==", args["nr_valid"], i64(tile.nr)))
    with b.if_else(full) as (then, otherwise):
        with then:
            _store_full_tile(b, tile, accs, args, epi_values)
        with otherwise:
            _store_edge_tile(b, tile, accs, args, epi_values, spill)
    b.ret_void()
    return fn


def _store_full_tile(b: ir.IRBuilder, tile: MicroTile, accs: list[list[ir.Value]],
                     args: dict[str, ir.Value], epi: EpilogueValues) -> None:
    """Four straight-line variants, by (first K block?, last K block?)."""
    first = b.icmp_signed("!=", args["first"], i64(0))
    last = b.icmp_signed("!=", args["last"], i64(0))
    with b.if_else(first) as (is_first, is_later):
        with is_first:
            _full_variants(b, tile, accs, args, epi, last, accumulate=False)
        with is_later:
            _full_variants(b, tile, accs, args, epi, last, accumulate=True)


def _full_variants(b: ir.IRBuilder, tile: MicroTile, accs: list[list[ir.Value]],
                   args: dict[str, ir.Value], epi: EpilogueValues, last: ir.Value,
                   accumulate: bool) -> None:
    with b.if_else(last) as (is_last, not_last):
        with is_last:
            _full_stores(b, tile, accs, args, epi, accumulate)
        with not_last:
            _full_stores(b, tile, accs, args, None, accumulate)


def _full_stores(b: ir.IRBuilder, tile: MicroTile, accs: list[list[ir.Value]],
                 args: dict[str, ir.Value], epi: EpilogueValues | None,
                 accumulate: bool) -> None:
    n = tile.lanes
    for r in range(tile.mr):
        row = b.mul(i64(r), args["ldc"])
        for j in range(tile.nv):
            index = b.add(row, i64(j * n))
            v = accs[r][j]
            if accumulate:
                v = fadd(b, v, load_vec(b, args["c"], index, n))
            if epi is not None:
                v = epi.apply(b, v, i64(r), i64(j * n))
            store_vec(b, v, args["c"], index)


def _store_edge_tile(b: ir.IRBuilder, tile: MicroTile, accs: list[list[ir.Value]],
                     args: dict[str, ir.Value], epi: EpilogueValues,
                     spill: ir.Value) -> None:
    """Partial tile: spill, then copy rows < mr_valid, lanes < nr_valid with masks.
    Not hot (at most one tile row and column per block), so runtime branches are fine."""
    n = tile.lanes
    for r in range(tile.mr):
        for j in range(tile.nv):
            store_vec(b, accs[r][j], spill, i64(r * tile.nr + j * n))
    first = b.icmp_signed("!=", args["first"], i64(0))
    last = b.icmp_signed("!=", args["last"], i64(0))
    with for_range(b, 0, args["mr_valid"], name="r") as r:
        for j in range(tile.nv):
            mask = prefix_mask(b, b.sub(args["nr_valid"], i64(j * n)), n)
            ptr = raw_gep(b, args["c"], b.add(b.mul(r, args["ldc"]), i64(j * n)))
            v = load_vec(b, spill, b.add(b.mul(r, i64(tile.nr)), i64(j * n)), n)
            old = masked_load(b, ptr, mask, n)
            v = b.select(first, v, fadd(b, v, old))
            with b.if_then(last):
                fused = epi.apply(b, v, r, i64(j * n), mask)
                masked_store(b, fused, ptr, mask)
            with b.if_then(b.not_(last)):
                masked_store(b, v, ptr, mask)


def _store_transposed_tile(b: ir.IRBuilder, tile: MicroTile, accs: list[list[ir.Value]],
                           args: dict[str, ir.Value], epi: EpilogueValues,
                           spill: ir.Value) -> None:
    """C column-major: tile column c (MR rows) is contiguous at c + c*ldc. Spill
    the tile, then per valid column gather it back and store it under a row
    mask. Costs about one gather per column per K block: small next to the
    K block's MR*NV*kc FMAs."""
    n, mr = tile.lanes, tile.mr
    for r in range(mr):
        for j in range(tile.nv):
            store_vec(b, accs[r][j], spill, i64(r * tile.nr + j * n))
    first = b.icmp_signed("!=", args["first"], i64(0))
    last = b.icmp_signed("!=", args["last"], i64(0))
    rows = prefix_mask(b, args["mr_valid"], mr)
    down_a_column = ir.Constant(vec(I32, mr), [r * tile.nr for r in range(mr)])
    every_row = ir.Constant(vec(I1, mr), [1] * mr)
    with for_range(b, 0, args["nr_valid"], name="col") as col:
        v = gather(b, raw_gep(b, spill, col), down_a_column, every_row)
        ptr = raw_gep(b, args["c"], b.mul(col, args["ldc"]))
        v = b.select(first, v, fadd(b, v, masked_load(b, ptr, rows, mr)))
        with b.if_then(last):
            masked_store(b, epi.apply(b, v, i64(0), col, rows), ptr, rows)
        with b.if_then(b.not_(last)):
            masked_store(b, v, ptr, rows)
