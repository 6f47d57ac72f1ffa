"""The attention kernel's scores from transposed keys, for prefills.

Scoring one query row against key rows takes, per key, a dot product over the
head and a horizontal sum. With the keys of each (batch, kv head) transposed
once per call into KT[d][j] (rows padded to a multiple of the vector), a row's
scores come out PAD keys at a time: per head dim, one broadcast
of q[d] and one fused multiply-add per vector, no horizontal sums. The
transpose costs a pass over the keys, so it is done only when enough query
rows share each key (a prefill); a decode step scores its single row directly.
The PAD keys of a pass are one LLVM vector, which the backend splits into the
target's registers.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ... import llvm_util as U
from ..support import mathfn as M
from ..support.vloop import fold, reduce

NEG_INF = float("-inf")

LANES = 16  # keys per vector (LLVM splits them for narrower targets)
PAD = 64  # keys scored per pass over the head dims (one value, 4 AVX-512 vectors),
# and the floats past each KT block and each scores row its last pass may touch
MIN_SHARED_ROWS = 16  # query rows per kv head (q_len x heads / kv_heads) for the transpose


def padded_len(b: ir.IRBuilder, kv_len: ir.Value) -> ir.Value:
    """KT's row length: the keys rounded up to whole vectors."""
    return b.mul(b.sdiv(b.add(kv_len, U.i64(LANES - 1)), U.i64(LANES)), U.i64(LANES))


def transposed_floats(batch, kv_heads, head, kv_len):
    """KT's scratch floats, at least (ints or symbolic sizes, as the lowering has
    them: the rounding up is bounded by adding a vector)."""
    return batch * kv_heads * head * (kv_len + LANES) + PAD


def use_transposed(b: ir.IRBuilder, p: dict[str, ir.Value]) -> ir.Value:
    """i1: enough query rows share each key for the transpose to pay."""
    return b.icmp_signed(">=", b.mul(p["q_len"], p["reps"]), U.i64(MIN_SHARED_ROWS))


def transpose_keys(b: ir.IRBuilder, p: dict[str, ir.Value], k: ir.Value, kt: ir.Value) -> None:
    """KT[bi][hk][d][j] = K[bi, hk, j, d] for every batch entry and kv head."""
    kv_heads = b.sdiv(p["heads"], p["reps"])
    row = padded_len(b, p["kv_len"])
    with U.for_range(b, U.i64(0), b.mul(p["batch"], kv_heads), name="bh") as bh:
        bi, hk = b.sdiv(bh, kv_heads), b.srem(bh, kv_heads)
        src0 = b.add(b.mul(bi, p["k_b"]), b.mul(hk, p["k_h"]))
        dst0 = b.mul(bh, b.mul(p["head"], row))
        with U.for_range(b, U.i64(0), p["kv_len"], name="tj") as j:
            src = b.add(src0, b.mul(j, p["k_j"]))
            with U.for_range(b, U.i64(0), p["head"], name="td") as d:
                value = U.load(b, k, b.add(src, d))
                U.store(b, value, kt, b.add(dst0, b.add(b.mul(d, row), j)))


def scores_from_transposed(b: ir.IRBuilder, p: dict[str, ir.Value], q: ir.Value,
                           q_row: ir.Value, kt: ir.Value, bi: ir.Value, hk: ir.Value,
                           lo: ir.Value, hi: ir.Value, scores: ir.Value, scale: ir.Value,
                           softcap: ir.Value) -> None:
    """scores[j] = softcap(scale * <q, k_j>) for j in [lo, hi), PAD lanes at a time
    (the lanes past hi land in the row's padding and are never read)."""
    row = padded_len(b, p["kv_len"])
    kv_heads = b.sdiv(p["heads"], p["reps"])
    base = b.mul(b.add(b.mul(bi, kv_heads), hk), b.mul(p["head"], row))
    zero = ir.Constant(U.vec(U.F32, PAD), [0.0] * PAD)
    with U.for_range(b, lo, hi, step=PAD, name="jb") as jb:
        def add_dim(b: ir.IRBuilder, d: ir.Value, acc: ir.Value) -> ir.Value:
            qd = U.splat(b, U.load(b, q, b.add(q_row, d)), PAD)
            keys = U.load_vec(b, kt, b.add(base, b.add(b.mul(d, row), jb)), PAD)
            return U.fma(b, qd, keys, acc)
        dots = fold(b, p["head"], zero, add_dim)
        U.store_vec(b, _capped(b, U.fmul(b, dots, U.splat(b, scale, PAD)), softcap), scores, jb)


def _capped(b: ir.IRBuilder, s: ir.Value, softcap: ir.Value) -> ir.Value:
    cap = U.splat(b, softcap, s.type.count)
    capped = b.fmul(M.tanh_f32(b, b.fdiv(s, cap)), cap)
    return b.select(b.fcmp_ordered(">", softcap, U.f32(0.0)), capped, s)


def softmax_row(b: ir.IRBuilder, scores: ir.Value, lo: ir.Value, hi: ir.Value) -> None:
    """scores[lo:hi] = softmax, LANES at a time (the direct path's scalar loops,
    vectorized; lanes past hi are masked). An empty range writes nothing."""
    fvec = U.vec(U.F32, LANES)
    lanes = ir.Constant(U.vec(U.I64, LANES), list(range(LANES)))

    def chunk(b: ir.IRBuilder, j: ir.Value, fill: float) -> tuple[ir.Value, ir.Value]:
        inside = b.icmp_signed("<", b.add(U.splat(b, j, LANES), lanes), U.splat(b, hi, LANES))
        values = U.load_vec(b, scores, j, LANES)  # the row's padding covers the tail
        return b.select(inside, values, U.splat(b, U.f32(fill), LANES)), inside

    def running_max(b: ir.IRBuilder, t: ir.Value, acc: ir.Value) -> ir.Value:
        s, _ = chunk(b, b.add(lo, b.mul(t, U.i64(LANES))), NEG_INF)
        return b.select(b.fcmp_ordered(">", s, acc), s, acc)

    steps = b.sdiv(b.add(b.sub(hi, lo), U.i64(LANES - 1)), U.i64(LANES))
    m = reduce(b, "fmax", fold(b, steps, U.splat(b, U.f32(NEG_INF), LANES), running_max))
    m = U.splat(b, b.select(b.fcmp_ordered("==", m, U.f32(NEG_INF)), U.f32(0.0), m), LANES)

    def exp_sum(b: ir.IRBuilder, t: ir.Value, acc: ir.Value) -> ir.Value:
        j = b.add(lo, b.mul(t, U.i64(LANES)))
        s, inside = chunk(b, j, NEG_INF)
        e = b.select(inside, M.exp_f32(b, b.fsub(s, m)), ir.Constant(fvec, [0.0] * LANES))
        U.store_vec(b, e, scores, j)
        return b.fadd(acc, e)

    total = reduce(b, "fadd", fold(b, steps, ir.Constant(fvec, [0.0] * LANES), exp_sum))
    total = b.select(b.fcmp_ordered("==", total, U.f32(0.0)), U.f32(1.0), total)
    inverse = U.splat(b, b.fdiv(U.f32(1.0), total), LANES)
    with U.for_range(b, U.i64(0), steps, name="sn") as t:
        j = b.add(lo, b.mul(t, U.i64(LANES)))
        U.store_vec(b, b.fmul(U.load_vec(b, scores, j, LANES), inverse), scores, j)


BLOCK_ROWS = 4  # query rows of one head scored and weighted together


def fold_many(b: ir.IRBuilder, start: ir.Value, stop: ir.Value, inits: list[ir.Value],
              step) -> list[ir.Value]:
    """accs = inits; for t in [start, stop): accs = step(b, t, accs); the final accs."""
    pre = b.block
    with U.for_range(b, start, stop, name="fm") as t:
        phis = [b.phi(v.type, name="acc") for v in inits]
        for phi, v in zip(phis, inits, strict=True):
            phi.add_incoming(v, pre)
        outs = step(b, t, phis)
        for phi, v in zip(phis, outs, strict=True):
            phi.add_incoming(v, b.block)
        body_end = b.block
    results = []
    for v, out in zip(inits, outs, strict=True):
        r = b.phi(v.type, name="folded")
        r.add_incoming(v, pre)
        r.add_incoming(out, body_end)
        results.append(r)
    return results


def block_scores(b: ir.IRBuilder, p: dict[str, ir.Value], q: ir.Value, q_rows: list[ir.Value],
                 kt: ir.Value, bi: ir.Value, hk: ir.Value, lo: ir.Value, hi: ir.Value,
                 rows: list[ir.Value], scale: ir.Value, softcap: ir.Value) -> None:
    """scores_from_transposed for BLOCK_ROWS query rows at once over the union of
    their key ranges: each load of transposed keys serves every row."""
    row = padded_len(b, p["kv_len"])
    kv_heads = b.sdiv(p["heads"], p["reps"])
    base = b.mul(b.add(b.mul(bi, kv_heads), hk), b.mul(p["head"], row))
    zero = ir.Constant(U.vec(U.F32, PAD), [0.0] * PAD)
    with U.for_range(b, lo, hi, step=PAD, name="jb") as jb:
        def add_dim(b: ir.IRBuilder, d: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            keys = U.load_vec(b, kt, b.add(base, b.add(b.mul(d, row), jb)), PAD)
            return [U.fma(b, U.splat(b, U.load(b, q, b.add(q_row, d)), PAD), keys, acc)
                    for q_row, acc in zip(q_rows, accs, strict=True)]
        dots = fold_many(b, U.i64(0), p["head"], [zero] * len(q_rows), add_dim)
        for scores, dot in zip(rows, dots, strict=True):
            U.store_vec(b, _capped(b, U.fmul(b, dot, U.splat(b, scale, PAD)), softcap),
                        scores, jb)


def block_values(b: ir.IRBuilder, p: dict[str, ir.Value], v: ir.Value, v_at, y: ir.Value,
                 y_rows: list[ir.Value], lo: ir.Value, hi: ir.Value,
                 rows: list[ir.Value]) -> None:
    """Y rows = sum_j p_r[j] * V row j over [lo, hi) for BLOCK_ROWS rows (their
    probabilities zero outside their own ranges), PAD elements of the output
    row in registers at a time; v_head is a multiple of PAD. `v_at(j)` is the
    element index of V row j."""
    zero = ir.Constant(U.vec(U.F32, PAD), [0.0] * PAD)
    with U.for_range(b, U.i64(0), p["v_head"], step=PAD, name="bc") as c0:
        def add_key(b: ir.IRBuilder, j: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            values = U.load_vec(b, v, b.add(v_at(j), c0), PAD)
            return [U.fma(b, U.splat(b, U.load(b, scores, j), PAD), values, acc)
                    for scores, acc in zip(rows, accs, strict=True)]
        sums = fold_many(b, lo, hi, [zero] * len(rows), add_key)
        for y_row, total in zip(y_rows, sums, strict=True):
            U.store_vec(b, total, y, b.add(y_row, c0))


def zero_outside(b: ir.IRBuilder, scores: ir.Value, lo: ir.Value, hi: ir.Value,
                 own_lo: ir.Value, own_hi: ir.Value) -> None:
    """A row's probabilities 0 on [lo, own_lo) and [own_hi, hi), the keys other
    rows of its block see and it does not."""
    for start, stop in ((lo, own_lo), (own_hi, hi)):
        with U.for_range(b, start, stop, name="z") as j:
            U.store(b, U.f32(0.0), scores, j)
