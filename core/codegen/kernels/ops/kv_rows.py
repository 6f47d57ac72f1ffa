"""Products of a few query rows with a KV cache read in place, for decode
steps (M small): the GEMM driver would pack the cache (every element once,
gathered) only to use it once.

    kv_dot_f32   C[o, m, n] = sum_k A[o, m, k] * B[o*bs + n*ldb + k]   (Q K^T: rows of K)
    kv_axpy_f32  C[o, m, n] = sum_k A[o, m, k] * B[o*bs + k*ldb + n]   (P V:   rows of V)

A and C are contiguous per batch entry o (strides a_bs, c_bs); B's rows are
ldb apart and its batch entries b_bs apart (a cache of capacity rows: b_bs =
capacity * ldb). Both vectorize along B's rows; the batch entries (heads) are
split across the worker threads.

Arguments: (a, b, c, batch, M, N, K, a_bs, b_bs, c_bs, ldb).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support.vloop import define_kernel, entry_alloca, reduce, vector_loop, vload, vstore

ARGS = ["a", "b", "c", "batch", "M", "N", "K", "a_bs", "b_bs", "c_bs", "ldb"]
KINDS = ("dot", "axpy")
UNROLL = 4  # independent accumulators: FMA latency, not throughput, bounds one chain


def kv_rows_kernel(kind: str) -> Kernel:
    assert kind in KINDS
    name = f"kv_{kind}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 8, ARGS)
        v = dict(zip(ARGS, fn.args, strict=True))
        work = b.mul(b.mul(v["batch"], v["M"]), b.mul(v["N"], v["K"]))
        row = _dot_rows if kind == "dot" else _axpy_rows
        parallel_loop(b, target.threads, name, list(fn.args), v["batch"], work,
                      lambda b, args, o: row(b, target.f32_lanes, dict(zip(ARGS, args,
                                                                           strict=True)), o))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 8, build)


def _dot_rows(b: ir.IRBuilder, lanes: int, v: dict, o: ir.Value) -> None:
    """C[o, m, n] = <A[o, m, :], B row n>: vector dot products, UNROLL rows of
    B at a time (independent FMA chains), then the remaining rows one by one."""
    vt = U.vec(U.F32, lanes)
    accs = [entry_alloca(b, vt, f"acc{j}") for j in range(UNROLL)]
    n_full = b.and_(v["N"], U.i64(-UNROLL))
    with U.for_range(b, U.i64(0), v["M"], name="m") as m:
        a_row = b.add(b.mul(o, v["a_bs"]), b.mul(m, v["K"]))
        c_row = b.add(b.mul(o, v["c_bs"]), b.mul(m, v["N"]))
        with U.for_range(b, U.i64(0), n_full, step=UNROLL, name="n4") as n:
            _dots(b, lanes, v, o, a_row, c_row, n, accs)
        with U.for_range(b, n_full, v["N"], name="n1") as n:
            _dots(b, lanes, v, o, a_row, c_row, n, accs[:1])


def _dots(b: ir.IRBuilder, lanes: int, v: dict, o, a_row, c_row, n, accs) -> None:
    """C[.., n + j] for j < len(accs)."""
    vt = U.vec(U.F32, lanes)
    rows = [b.add(b.mul(o, v["b_bs"]), b.mul(b.add(n, U.i64(j)), v["ldb"]))
            for j in range(len(accs))]
    for acc in accs:
        b.store(ir.Constant(vt, [0.0] * lanes), acc)

    def body(b, i, count):
        x = vload(b, v["a"], b.add(a_row, i), lanes, count)
        for acc, row in zip(accs, rows, strict=True):
            y = vload(b, v["b"], b.add(row, i), lanes, count)
            b.store(U.fma(b, x, y, b.load(acc, typ=vt)), acc)

    vector_loop(b, v["K"], lanes, body, name="k")
    for j, acc in enumerate(accs):
        U.store(b, reduce(b, "fadd", b.load(acc, typ=vt)), v["c"],
                b.add(c_row, b.add(n, U.i64(j))))


def _axpy_rows(b: ir.IRBuilder, lanes: int, v: dict, o: ir.Value) -> None:
    """C[o, m, :] = sum_k A[o, m, k] * B row k: UNROLL vectors along the row
    (a head's whole row, for head sizes up to UNROLL * lanes) accumulated over
    the rows k, which are read one after the other."""
    wide = UNROLL * lanes
    accs = [entry_alloca(b, U.vec(U.F32, lanes), f"acc{j}") for j in range(UNROLL)]
    b_base = b.mul(o, v["b_bs"])
    n_full = b.and_(v["N"], U.i64(-wide))
    with U.for_range(b, U.i64(0), v["M"], name="m") as m:
        a_row = b.add(b.mul(o, v["a_bs"]), b.mul(m, v["K"]))
        c_row = b.add(b.mul(o, v["c_bs"]), b.mul(m, v["N"]))
        with U.for_range(b, U.i64(0), n_full, step=wide, name="n") as n:
            _weighted_sum(b, lanes, v, accs, a_row, c_row, b_base, n, None)
        with b.if_then(b.icmp_signed("<", n_full, v["N"])):
            _weighted_sum(b, lanes, v, accs, a_row, c_row, b_base, n_full,
                          b.sub(v["N"], n_full))


def _weighted_sum(b: ir.IRBuilder, lanes: int, v: dict, accs, a_row, c_row, b_base, n,
                  rest: ir.Value | None) -> None:
    """C[.., n : n + UNROLL * lanes] (the first `rest` of them where given)."""
    vt = U.vec(U.F32, lanes)
    counts = [None] * len(accs) if rest is None else [
        b.select(b.icmp_signed("<", rest, U.i64(j * lanes)), U.i64(0),
                 b.select(b.icmp_signed(">", rest, U.i64((j + 1) * lanes)), U.i64(lanes),
                          b.sub(rest, U.i64(j * lanes))))
        for j in range(len(accs))]
    for acc in accs:
        b.store(ir.Constant(vt, [0.0] * lanes), acc)
    with U.for_range(b, U.i64(0), v["K"], name="k") as k:
        w = U.splat(b, U.load(b, v["a"], b.add(a_row, k)), lanes)
        row = b.add(b.add(b_base, b.mul(k, v["ldb"])), n)
        for j, (acc, count) in enumerate(zip(accs, counts, strict=True)):
            y = vload(b, v["b"], b.add(row, U.i64(j * lanes)), lanes, count)
            b.store(U.fma(b, w, y, b.load(acc, typ=vt)), acc)
    for j, (acc, count) in enumerate(zip(accs, counts, strict=True)):
        vstore(b, b.load(acc, typ=vt), v["c"], b.add(c_row, b.add(n, U.i64(j * lanes))), count)
