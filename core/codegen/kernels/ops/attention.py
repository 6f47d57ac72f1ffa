"""ONNX Attention (opsets 23-25) for one query row at a time:

    s[j]  = softcap(scale * <Q[b,h,i,:], K[b,h/reps,j,:]>)
    t[j]  = s[j] + bias[j]     (mask, causal, sliding window, key padding)
    p     = softmax(t)          (0 for a row whose bias is -inf everywhere)
    Y[b,h,i,:] = sum_j p[j] * V[b,h/reps,j,:]

Layouts (3-D [B, S, H*D] or 4-D [B, H, S, D] inputs, broadcast masks) are
described by an i64 plan of dims and element strides built at compile time, so
one kernel serves every shape. Arithmetic is float32 (float16 / bfloat16
inputs are widened on load); the dot products vectorize along the head dims.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....ir import DType
from ....program import F32, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import GRAIN, define_range_fn, parallel_range, workers_for
from ..support import mathfn as M
from ..support.dtype_ir import load_index, storage_type, to_compute, to_storage
from ..support.vloop import define_kernel, entry_alloca, fold
from . import attention_keys as KT

# Plan slots (i64): dims, then element strides (b, h, row) of each tensor.
PLAN = ("batch", "heads", "q_len", "kv_len", "head", "v_head", "reps",
        "q_b", "q_h", "q_i", "k_b", "k_h", "k_j", "v_b", "v_h", "v_j", "y_b", "y_h", "y_i",
        "m_b", "m_h", "m_i", "m_j", "mask_len", "causal", "left", "right", "past",
        "o_b", "o_h", "o_i")
NEG_INF = float("-inf")
ROW_BLOCK = 64  # output row elements accumulated in registers over the keys
ARGS = ("q", "k", "v", "y", "mask", "nonpad", "qk_out", "scores", "kt", "plan", "scale",
        "softcap")


@dataclass(frozen=True)
class AttentionSpec:
    dtype: DType  # of Q, K, V, Y
    mask: DType | None  # bool or the float dtype; None: no mask
    nonpad: bool  # nonpad_kv_seqlen given
    qk_mode: int | None  # which qk_matmul_output to write (0-3), None: not requested

    @property
    def transposed_keys(self) -> bool:
        """Prefills score from keys transposed once per call (attention_keys.py):
        float32 without a mask tensor or raw scores, where every key in a row's
        range has bias 0."""
        return self.dtype is DType.float32 and self.mask is None and self.qk_mode is None

    @property
    def name(self) -> str:
        mask = self.mask.short if self.mask else "nomask"
        qk = "" if self.qk_mode is None else f"_qk{self.qk_mode}"
        kt = "_kt" if self.transposed_keys else ""
        return f"attention_{self.dtype.short}_{mask}{'_nonpad' if self.nonpad else ''}{qk}{kt}"


def attention_kernel(spec: AttentionSpec) -> Kernel:
    """(q, k, v, y, mask, nonpad, qk_out, scores, kt, plan, scale, softcap); scores
    is scratch for kv_len + PAD floats per thread, kt for the transposed keys
    (attention_keys.transposed_floats; unused without transposed_keys); unused
    pointers may be anything. The query rows (batch x heads x q_len) are split
    across the threads."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        types, names = [U.PTR] * 10 + [U.F32] * 2, list(ARGS)
        fn, b = define_kernel(module, spec.name, types, names)
        range_fn, rb, v = define_range_fn(module, f"{spec.name}.range", types, names)
        _Attention(rb, spec, [v[n] for n in names]).emit(v["begin"], v["end"], v["worker"])
        rb.ret_void()
        plan = fn.args[9]
        if spec.transposed_keys:
            p = {name: U.load(b, plan, U.i64(k), U.I64) for k, name in enumerate(PLAN)}
            with b.if_then(KT.use_transposed(b, p)):
                KT.transpose_keys(b, p, fn.args[1], fn.args[8])
        dims = [U.load(b, plan, U.i64(PLAN.index(d)), U.I64) for d in
                ("batch", "heads", "q_len", "kv_len", "head")]
        rows = b.mul(b.mul(dims[0], dims[1]), dims[2], name="rows")
        work = b.mul(b.mul(rows, dims[3]), b.mul(dims[4], U.i64(2)))
        parallel_range(b, target.threads, range_fn, list(fn.args), rows,
                       workers_for(b, work, GRAIN, target.threads))
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 10 + (F32,) * 2, build)


class _Attention:
    def __init__(self, b: ir.IRBuilder, spec: AttentionSpec, args):
        self.b, self.spec = b, spec
        (self.q, self.k, self.v, self.y, self.mask, self.nonpad, self.qk_out, self.scores,
         self.kt, plan, self.scale, self.softcap) = args
        self.p = {name: U.load(b, plan, U.i64(k), U.I64) for k, name in enumerate(PLAN)}
        self.masked_all = entry_alloca(b, U.I1, "masked_all")
        self.acc = entry_alloca(b, U.F32, "acc")

    def load(self, ptr: ir.Value, i: ir.Value, dt: DType | None = None) -> ir.Value:
        dt = dt or self.spec.dtype
        return to_compute(self.b, U.load(self.b, ptr, i, storage_type(dt)), dt)

    def emit(self, begin: ir.Value, end: ir.Value, worker: ir.Value) -> None:
        """Query rows [begin, end) (flattened batch x heads x q_len), with this
        worker's slice of the scores scratch."""
        b, p = self.b, self.p
        stride = b.add(p["kv_len"], U.i64(KT.PAD))
        self.scores = U.gep(b, self.scores, b.mul(worker, b.mul(stride, U.i64(KT.BLOCK_ROWS))))
        if not self.spec.transposed_keys:
            with U.for_range(b, begin, end, name="row") as row:
                self._row(*self._row_coords(row))
            return
        blocks = b.and_(KT.use_transposed(b, p), b.icmp_signed(
            "==", b.srem(p["v_head"], U.i64(KT.PAD)), U.i64(0)))
        pre = b.block
        body, done = b.append_basic_block("rows.body"), b.append_basic_block("rows.done")
        b.cbranch(b.icmp_signed("<", begin, end), body, done)
        b.position_at_end(body)
        row = b.phi(U.I64, name="row")
        row.add_incoming(begin, pre)
        bi, h, i = self._row_coords(row)
        whole = b.and_(b.icmp_signed("<=", b.add(i, U.i64(KT.BLOCK_ROWS)), p["q_len"]),
                       b.icmp_signed("<=", b.add(row, U.i64(KT.BLOCK_ROWS)), end))
        with b.if_else(b.and_(blocks, whole)) as (block, single):
            with block:
                self._rows_block(bi, h, i, stride)
                block_end = b.block
            with single:
                self._row(bi, h, i)
                single_end = b.block
        step = b.phi(U.I64, name="step")
        step.add_incoming(U.i64(KT.BLOCK_ROWS), block_end)
        step.add_incoming(U.i64(1), single_end)
        nxt = b.add(row, step)
        row.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, end), body, done)
        b.position_at_end(done)

    def _row_coords(self, row: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
        """(batch entry, head, query position) of a flattened row."""
        b, p = self.b, self.p
        i = b.srem(row, p["q_len"])
        h = b.srem(b.sdiv(row, p["q_len"]), p["heads"])
        return b.sdiv(row, b.mul(p["q_len"], p["heads"])), h, i

    def _rows_block(self, bi: ir.Value, h: ir.Value, i0: ir.Value, stride: ir.Value) -> None:
        """BLOCK_ROWS consecutive query rows of one head (a prefill, no mask tensor):
        scored on the union of their key ranges, then each row's softmax on its
        own range (zero elsewhere), then weighted together (attention_keys.py)."""
        b, p = self.b, self.p
        hk = b.sdiv(h, p["reps"])
        offset, valid = self._offset(bi)
        count = range(KT.BLOCK_ROWS)
        ranges = [self._key_range(b.add(i0, U.i64(r)), offset, valid) for r in count]
        lo = ranges[0][0]
        hi = ranges[0][1]
        for r_lo, r_hi in ranges[1:]:
            lo = U.smin(b, lo, r_lo)
            hi = b.select(b.icmp_signed(">", r_hi, hi), r_hi, hi)
        rows = [U.gep(b, self.scores, b.mul(stride, U.i64(r))) for r in count]
        q_rows = [self._at("q", bi, h, b.add(i0, U.i64(r))) for r in count]
        KT.block_scores(b, p, self.q, q_rows, self.kt, bi, hk, lo, hi, rows, self.scale,
                        self.softcap)
        for scores, (r_lo, r_hi) in zip(rows, ranges, strict=True):
            KT.softmax_row(b, scores, r_lo, r_hi)
            KT.zero_outside(b, scores, lo, hi, r_lo, r_hi)
        y_rows = [self._at("y", bi, h, b.add(i0, U.i64(r))) for r in count]
        KT.block_values(b, p, self.v, lambda j: self._at("v", bi, hk, j), self.y, y_rows,
                        lo, hi, rows)

    def _row(self, bi: ir.Value, h: ir.Value, i: ir.Value) -> None:
        b, p = self.b, self.p
        hk = b.sdiv(h, p["reps"])
        offset, valid = self._offset(bi)
        lo, hi = self._key_range(i, offset, valid)
        q_row = self._at("q", bi, h, i)
        if self.spec.transposed_keys:
            with b.if_else(KT.use_transposed(b, p)) as (fast, direct):
                with fast:  # no mask tensor: every key in [lo, hi) has bias 0
                    KT.scores_from_transposed(b, p, self.q, q_row, self.kt, bi, hk, lo, hi,
                                              self.scores, self.scale, self.softcap)
                    KT.softmax_row(b, self.scores, lo, hi)
                with direct:  # a decode step: dot products with the key rows
                    with U.for_range(b, lo, hi, name="j") as j:
                        U.store(b, self._score(q_row, self._at("k", bi, hk, j)), self.scores, j)
                    KT.softmax_row(b, self.scores, lo, hi)
        else:
            self._direct_scores(bi, h, i, hk, q_row, lo, hi, offset, valid)
            self._softmax(lo, hi)
        self._weighted_values(bi, h, i, hk, lo, hi)

    def _direct_scores(self, bi, h, i, hk, q_row, lo, hi, offset, valid) -> None:
        """scores[j] (bias added) for j in [lo, hi), each a dot product with key row j."""
        b = self.b
        b.store(ir.Constant(U.I1, 1), self.masked_all)
        with U.for_range(b, lo, hi, name="j") as j:
            s = self._score(q_row, self._at("k", bi, hk, j))
            bias = self._bias(bi, h, i, j, offset, valid)
            b.store(b.and_(b.load(self.masked_all, typ=U.I1),
                           b.fcmp_ordered("==", bias, U.f32(NEG_INF))), self.masked_all)
            t = b.fadd(s, bias)
            if self.spec.qk_mode in (0, 1, 2):
                self._store_qk(bi, h, i, j, t if self.spec.qk_mode == 2 else s)
            U.store(b, t, self.scores, j)

    def _key_range(self, i: ir.Value, offset: ir.Value, valid: ir.Value
                   ) -> tuple[ir.Value, ir.Value]:
        """Keys [lo, hi) the causal frontier, the sliding window and the valid
        length leave open: the others' probabilities are 0, so they are not
        computed (a causal prefill does half the work). All keys when the raw
        scores are asked for (qk_matmul_output)."""
        b, p = self.b, self.p
        if self.spec.qk_mode is not None:
            return U.i64(0), p["kv_len"]
        frontier = b.add(i, offset)
        hi = U.smin(b, p["kv_len"], valid)
        causal_end = b.add(frontier, U.i64(1))
        hi = b.select(b.icmp_signed("!=", p["causal"], U.i64(0)), U.smin(b, hi, causal_end), hi)
        right_end = b.add(b.add(frontier, p["right"]), U.i64(1))
        hi = b.select(b.icmp_signed(">=", p["right"], U.i64(0)), U.smin(b, hi, right_end), hi)
        left_start = b.sub(frontier, p["left"])
        lo = b.select(b.icmp_signed(">=", p["left"], U.i64(0)), left_start, U.i64(0))
        lo = b.select(b.icmp_signed("<", lo, U.i64(0)), U.i64(0), lo)
        return lo, b.select(b.icmp_signed("<", hi, lo), lo, hi)

    def _at(self, t: str, bi: ir.Value, h: ir.Value, i: ir.Value) -> ir.Value:
        b, p = self.b, self.p
        return b.add(b.add(b.mul(bi, p[f"{t}_b"]), b.mul(h, p[f"{t}_h"])),
                     b.mul(i, p[f"{t}_{'j' if t in ('k', 'v') else 'i'}"]))

    def _offset(self, bi: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(causal / window frontier offset of this batch entry, number of valid keys)."""
        b, p = self.b, self.p
        if not self.spec.nonpad:
            return p["past"], p["kv_len"]
        valid = load_index(b, self.nonpad, bi, DType.int64)
        return b.sub(valid, p["q_len"]), valid

    def _score(self, q_row: ir.Value, k_row: ir.Value) -> ir.Value:
        b = self.b
        b.store(U.f32(0.0), self.acc)
        with U.for_range(b, U.i64(0), self.p["head"], name="d") as d:
            prod = U.fmul(b, self.load(self.q, b.add(q_row, d)), self.load(self.k, b.add(k_row, d)))
            b.store(U.fadd(b, b.load(self.acc, typ=U.F32), prod), self.acc)
        s = b.fmul(b.load(self.acc, typ=U.F32), self.scale)
        capped = b.fmul(M.tanh_f32(b, b.fdiv(s, self.softcap)), self.softcap)
        return b.select(b.fcmp_ordered(">", self.softcap, U.f32(0.0)), capped, s)

    def _bias(self, bi, h, i, j, offset, valid) -> ir.Value:
        """The additive bias of score (i, j): the mask's value (0 / -inf for a boolean
        mask, -inf past its end), -inf outside the causal frontier, the sliding
        window, or the batch entry's valid keys."""
        b, p = self.b, self.p
        bias = U.f32(0.0)
        if self.spec.mask is not None:
            inside = b.icmp_signed("<", j, p["mask_len"])
            at = b.add(b.add(b.mul(bi, p["m_b"]), b.mul(h, p["m_h"])),
                       b.add(b.mul(i, p["m_i"]), b.mul(b.select(inside, j, U.i64(0)), p["m_j"])))
            m = self.load(self.mask, at, self.spec.mask)
            if self.spec.mask is DType.bool:
                m = b.select(m, U.f32(0.0), U.f32(NEG_INF))
            bias = b.select(inside, m, U.f32(NEG_INF))
        frontier = b.add(i, offset)  # a query's absolute position
        blocked = b.and_(b.icmp_signed("!=", p["causal"], U.i64(0)),
                         b.icmp_signed(">", j, frontier))
        diff = b.sub(frontier, j)
        for side, gap in (("left", diff), ("right", b.neg(diff))):
            limit = p[side]
            outside = b.and_(b.icmp_signed(">=", limit, U.i64(0)), b.icmp_signed(">", gap, limit))
            blocked = b.or_(blocked, outside)
        blocked = b.or_(blocked, b.icmp_signed(">=", j, valid))
        return b.select(blocked, U.f32(NEG_INF), bias)

    def _store_qk(self, bi, h, i, j, value: ir.Value) -> None:
        b = self.b
        at = b.add(self._at("o", bi, h, i), j)
        U.store(b, to_storage(b, value, self.spec.dtype), self.qk_out, at)

    def _softmax(self, lo: ir.Value, hi: ir.Value) -> None:
        """scores[j] = softmax probabilities over [lo, hi), 0 for a fully masked row;
        the maximum is replaced by 0 when it is -inf, as the reference does."""
        b = self.b
        b.store(U.f32(NEG_INF), self.acc)
        with U.for_range(b, lo, hi, name="m") as j:
            b.store(_max(b, b.load(self.acc, typ=U.F32), U.load(b, self.scores, j)), self.acc)
        m = b.load(self.acc, typ=U.F32)
        m = b.select(b.fcmp_ordered("==", m, U.f32(NEG_INF)), U.f32(0.0), m)
        b.store(U.f32(0.0), self.acc)
        with U.for_range(b, lo, hi, name="e") as j:
            e = M.exp_f32(b, b.fsub(U.load(b, self.scores, j), m))
            U.store(b, e, self.scores, j)
            b.store(b.fadd(b.load(self.acc, typ=U.F32), e), self.acc)
        total = b.load(self.acc, typ=U.F32)
        total = b.select(b.fcmp_ordered("==", total, U.f32(0.0)), U.f32(1.0), total)
        keep = b.select(b.load(self.masked_all, typ=U.I1), U.f32(0.0), b.fdiv(U.f32(1.0), total))
        with U.for_range(b, lo, hi, name="p") as j:
            U.store(b, b.fmul(U.load(b, self.scores, j), keep), self.scores, j)

    def _weighted_values(self, bi, h, i, hk, lo: ir.Value, hi: ir.Value) -> None:
        b, p = self.b, self.p
        y_row = self._at("y", bi, h, i)
        if self.spec.qk_mode == 3:
            with U.for_range(b, U.i64(0), p["kv_len"], name="o") as j:
                self._store_qk(bi, h, i, j, U.load(b, self.scores, j))
        if self.spec.dtype is DType.float32:
            self._weighted_rows(y_row, bi, hk, lo, hi)
            return
        with U.for_range(b, U.i64(0), p["v_head"], name="dv") as d:
            b.store(U.f32(0.0), self.acc)
            with U.for_range(b, lo, hi, name="jv") as j:
                v = self.load(self.v, b.add(self._at("v", bi, hk, j), d))
                b.store(U.fadd(b, b.load(self.acc, typ=U.F32),
                               U.fmul(b, U.load(b, self.scores, j), v)), self.acc)
            U.store(b, to_storage(b, b.load(self.acc, typ=U.F32), self.spec.dtype), self.y,
                    b.add(y_row, d))

    def _weighted_rows(self, y_row: ir.Value, bi: ir.Value, hk: ir.Value, lo: ir.Value,
                       hi: ir.Value) -> None:
        """float32: Y row = sum_j p[j] * V row j, in key order per element. Blocks of
        ROW_BLOCK elements stay in registers over all keys (adding into Y in memory
        would wait on the store of the key before); the rest of the row goes
        element-wise through memory."""
        b, p = self.b, self.p
        full = b.mul(b.sdiv(p["v_head"], U.i64(ROW_BLOCK)), U.i64(ROW_BLOCK))
        zero = ir.Constant(U.vec(U.F32, ROW_BLOCK), [0.0] * ROW_BLOCK)
        with U.for_range(b, U.i64(0), full, step=ROW_BLOCK, name="yc") as c0:
            def add_key(b: ir.IRBuilder, j: ir.Value, acc: ir.Value) -> ir.Value:
                weight = U.splat(b, U.load(b, self.scores, j), ROW_BLOCK)
                v_row = U.load_vec(b, self.v, b.add(self._at("v", bi, hk, j), c0), ROW_BLOCK)
                return U.fma(b, weight, v_row, acc)
            U.store_vec(b, fold(b, hi, zero, add_key, start=lo), self.y, b.add(y_row, c0))
        with U.for_range(b, full, p["v_head"], name="y0") as d:
            U.store(b, U.f32(0.0), self.y, b.add(y_row, d))
        with U.for_range(b, lo, hi, name="jv") as j:
            weight = U.load(b, self.scores, j)
            v_row = self._at("v", bi, hk, j)
            with U.for_range(b, full, p["v_head"], name="dv") as d:
                at = b.add(y_row, d)
                term = U.fmul(b, weight, U.load(b, self.v, b.add(v_row, d)))
                U.store(b, U.fadd(b, U.load(b, self.y, at), term), self.y, at)


def _max(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.fcmp_ordered(">", y, x), y, x)
