"""The GEMM driver's outermost level: which block of C each worker computes.

Per batch item, C is cut into *units* along one axis: NR-column panels (an N
split) or MR-row panels (an M split). The batch x units index space is cut
into contiguous ranges, one per worker (core/codegen/parallel.py), and a
worker runs gemm.py's whole blocked nest (K blocks, packing, micro-tiles) on
its units with its own scratch slice. Units start on panel boundaries, so
every C tile is computed by the same micro-kernel over the same K blocks in
the same order whatever the thread count: results are bit-for-bit the same
with 1, 2 or N threads.

The axis is chosen at run time, by a cost model counting, for the busiest
worker, flops plus packing (an element packed costs about PACK_COST flops):
- its units: 2*K*M*NR flops per N unit (2*K*N*MR per M unit), plus packing
  its part of the split operand (B for an N split, A for an M split);
- the other operand, which every worker packs in full, unless it was packed
  at compile time (weights).
So a conv (weights in A) splits pixels (N) unless too few pixel panels leave
a worker idle, and a fully-connected layer with one row splits N.

Small GEMMs run on one thread: a worker per GRAIN_FLOPS of work at most, the
work counting the operands' elements as well as the flops (see _work).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import llvmlite.ir as ir

from ...llvm_util import I64, for_range, i64, smin
from ...parallel import define_range_fn, parallel_range, workers_for


class GemmLike(Protocol):
    """What the split needs of a GEMM spec (fp32 GemmSpec, int8 IGemmSpec)."""

    name: str
    threads: int
    mr: int
    a_src: str  # "packed": a compile-time operand, never packed at run time
    b_src: str

    @property
    def nr(self) -> int: ...


Range = tuple[ir.Value, ir.Value]  # [lo, hi) of rows or columns of C
# blocked(b, spec, v, item, rows, cols, worker): C[rows, cols] of batch item `item`,
# computed with scratch slice `worker`
BlockedFn = Callable[..., None]

PACK_COST = 32  # flops a packed element costs, roughly (memory-bound copies and gathers)
GRAIN_FLOPS = 1 << 21  # ~20 us of one core: below that, waking a worker does not pay


def split_c_across_workers(b: ir.IRBuilder, spec: GemmLike, v: dict[str, ir.Value],
                           types: list[ir.Type], blocked: BlockedFn) -> None:
    """The kernel's body: choose the split, then run the range function on
    batch x units, in parallel when spec.threads > 1 and the GEMM is big enough."""
    range_fn = _define_range_fn(b.module, spec, list(v), types, blocked)
    if spec.threads <= 1:
        split_n, units = i64(1), _ceil_div(b, v["N"], spec.nr)
        workers = i64(1)
    else:
        workers = workers_for(b, _work(b, v), GRAIN_FLOPS, spec.threads)
        split_n, units = _choose_split(b, spec, v, workers)
    n = b.mul(v["batch"], units)
    parallel_range(b, spec.threads, range_fn, [*v.values(), split_n, units], n, workers)


def _work(b: ir.IRBuilder, v: dict[str, ir.Value]) -> ir.Value:
    """The GEMM's cost in flops: its multiply-adds, plus each operand element read
    once (PACK_COST): a GEMV-like product (a fully-connected layer, M = 1) is bound
    by streaming its weights, not by its few flops."""
    per_k = b.add(b.mul(b.mul(v["M"], v["N"]), i64(2)),
                  b.mul(b.add(v["M"], v["N"]), i64(PACK_COST)))
    return b.mul(per_k, b.mul(v["K"], v["batch"]))


def _choose_split(b: ir.IRBuilder, spec: GemmLike, v: dict[str, ir.Value],
                  workers: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(split_n: i64 1 for N, 0 for M; units per batch item)."""
    units_n, units_m = _ceil_div(b, v["N"], spec.nr), _ceil_div(b, v["M"], spec.mr)
    forced = getattr(spec, "split", "auto")  # a tuned fp32 GEMM fixes the axis
    if forced in ("m", "n"):
        return (i64(1), units_n) if forced == "n" else (i64(0), units_m)
    pack_a = PACK_COST * (spec.a_src != "packed")
    pack_b = PACK_COST * (spec.b_src != "packed")
    per_n_unit = b.mul(b.add(b.mul(v["M"], i64(2)), i64(pack_b)), i64(spec.nr))
    per_m_unit = b.mul(b.add(b.mul(v["N"], i64(2)), i64(pack_a)), i64(spec.mr))
    cost_n = _busiest_cost(b, v["batch"], units_n, workers, per_n_unit,
                           b.mul(v["M"], i64(pack_a)))
    cost_m = _busiest_cost(b, v["batch"], units_m, workers, per_m_unit,
                           b.mul(v["N"], i64(pack_b)))
    by_n = b.icmp_signed("<=", cost_n, cost_m)
    return b.zext(by_n, I64), b.select(by_n, units_n, units_m)


def _busiest_cost(b: ir.IRBuilder, batch: ir.Value, units: ir.Value, workers: ir.Value,
                  per_unit: ir.Value, per_item: ir.Value) -> ir.Value:
    """Cost (per k) of the worker with the most units: its units, plus the other
    operand packed once for each batch item it touches."""
    mine = _ceil_div(b, b.mul(batch, units), workers)
    items = _ceil_div(b, mine, _max(b, units, i64(1)))
    return b.add(b.mul(mine, per_unit), b.mul(items, per_item))


def _define_range_fn(module: ir.Module, spec: GemmLike, names: list[str],
                     types: list[ir.Type], blocked: BlockedFn) -> ir.Function:
    """`{kernel}.range(*kernel args, split_n, units, begin, end, worker)`: units
    [begin, end) of the flattened batch x units space."""
    fn, b, v = define_range_fn(module, f"{spec.name}.range", [*types, I64, I64],
                               [*names, "split_n", "units"])
    units = _max(b, v["units"], i64(1))  # an empty C has no units: no division by 0
    begin, end = v["begin"], v["end"]
    first, last = b.sdiv(begin, units), b.sdiv(b.sub(end, i64(1)), units)
    with for_range(b, first, b.add(last, i64(1)), name="item") as item:
        base = b.mul(item, units)
        lo = b.sub(_max(b, begin, base), base)
        hi = b.sub(smin(b, end, b.add(base, units)), base)
        rows, cols = _unit_ranges(b, spec, v, lo, hi)
        blocked(b, spec, v, item, rows, cols, v["worker"])
    b.ret_void()
    return fn


def _unit_ranges(b: ir.IRBuilder, spec: GemmLike, v: dict[str, ir.Value], lo: ir.Value,
                 hi: ir.Value) -> tuple[Range, Range]:
    """Rows and columns of C covered by units [lo, hi) of the chosen axis."""
    by_n = b.icmp_signed("!=", v["split_n"], i64(0))
    step = b.select(by_n, i64(spec.nr), i64(spec.mr))
    extent = b.select(by_n, v["N"], v["M"])
    start, stop = b.mul(lo, step), smin(b, b.mul(hi, step), extent)
    rows = (b.select(by_n, i64(0), start), b.select(by_n, v["M"], stop))
    cols = (b.select(by_n, start, i64(0)), b.select(by_n, stop, v["N"]))
    return rows, cols


def _ceil_div(b: ir.IRBuilder, x: ir.Value, d: ir.Value | int) -> ir.Value:
    d = i64(d) if isinstance(d, int) else d
    return b.sdiv(b.add(x, b.sub(d, i64(1))), d)


def _max(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)
