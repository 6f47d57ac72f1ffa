"""Sequence ops that carry a state from step to step (opset 27 previews):

- CausalConvWithState: a depthwise causal 1-D convolution over [past_state ++ x]
  (optional bias, SiLU), returning the last k-1 inputs as the next state;
- LinearAttention: a [d_k, d_v] state per batch entry and key/value head, decayed
  (gated rules), corrected toward the value (delta rules), updated by k v^T,
  and read by every query head of the group.

Scalar loops in float32; the states are small and the recurrence is serial.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....ir import DType
from ....program import F32, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn as M
from ..support.dtype_ir import storage_type, to_compute, to_storage
from ..support.vloop import define_kernel, entry_alloca, nested_loops
from .gather import load_table


@dataclass(frozen=True)
class CausalConvSpec:
    dtype: DType
    bias: bool
    past: bool
    silu: bool

    @property
    def name(self) -> str:
        flags = "".join(f"_{f}" for f, on in (("bias", self.bias), ("past", self.past),
                                              ("silu", self.silu)) if on)
        return f"causal_conv_state{flags}_{self.dtype.short}"


def causal_conv_kernel(spec: CausalConvSpec) -> Kernel:
    """(x, w, bias, past, y, present, plan): plan i64 = [batch, channels, length, k];
    x, y [B, C, L]; w [C, 1, k]; past, present [B, C, k - 1]."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, spec.name, [U.PTR] * 7,
                              ["x", "w", "bias", "past", "y", "present", "plan"])
        x, w, bias, past, y, present, plan = fn.args
        batch, channels, length, k = load_table(b, plan, 4)
        dt = spec.dtype
        acc = entry_alloca(b, U.F32, "acc")

        def load(ptr, i):
            return to_compute(b, U.load(b, ptr, i, storage_type(dt)), dt)

        with nested_loops(b, [batch, channels]) as (bi, c):
            row = b.add(b.mul(bi, channels), c)
            history = b.sub(k, U.i64(1))

            def padded(p: ir.Value) -> ir.Value:
                """[past ++ x][p] of this row (zeros for a missing past)."""
                in_past = b.icmp_signed("<", p, history)
                from_x = load(x, b.add(b.mul(row, length), b.select(in_past, U.i64(0),
                                                                     b.sub(p, history))))
                if not spec.past:
                    return b.select(in_past, U.f32(0.0), from_x)
                from_past = load(past, b.add(b.mul(row, history), b.select(in_past, p, U.i64(0))))
                return b.select(in_past, from_past, from_x)

            with U.for_range(b, U.i64(0), length, name="t") as t:
                b.store(load(bias, c) if spec.bias else U.f32(0.0), acc)
                with U.for_range(b, U.i64(0), k, name="j") as j:
                    term = b.fmul(load(w, b.add(b.mul(c, k), j)), padded(b.add(t, j)))
                    b.store(b.fadd(b.load(acc, typ=U.F32), term), acc)
                v = b.load(acc, typ=U.F32)
                if spec.silu:
                    v = b.fmul(v, M.sigmoid_f32(b, v))
                U.store(b, to_storage(b, v, dt), y, b.add(b.mul(row, length), t))
            with U.for_range(b, U.i64(0), history, name="s") as s:
                U.store(b, to_storage(b, padded(b.add(length, s)), dt), present,
                        b.add(b.mul(row, history), s))
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 7, build)


@dataclass(frozen=True)
class LinearAttentionSpec:
    dtype: DType  # of every tensor input and output (the state is float32 inside)
    gated: bool
    delta: bool
    decay_per_head: bool  # decay [B, T, Hkv] rather than [B, T, Hkv * dk]
    beta_shared: bool  # beta [B, T, 1] rather than [B, T, Hkv]
    past: bool

    @property
    def name(self) -> str:
        rule = ("gated_" if self.gated else "") + ("delta" if self.delta else "linear")
        extra = ("_headdecay" if self.gated and self.decay_per_head else "") + \
            ("_onebeta" if self.delta and self.beta_shared else "") + ("_past" if self.past
                                                                      else "")
        return f"linear_attention_{rule}{extra}_{self.dtype.short}"


LA_PLAN = ("batch", "steps", "q_heads", "kv_heads", "dk", "dv")


def linear_attention_kernel(spec: LinearAttentionSpec) -> Kernel:
    """(q, k, v, past, decay, beta, y, present, work, plan, scale): q [B, T, Hq*dk],
    k [B, T, Hkv*dk], v [B, T, Hkv*dv], y [B, T, Hq*dv], past / present
    [B, Hkv, dk, dv]; work: scratch for dk*dv + dv floats; plan i64 per LA_PLAN."""

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, spec.name, [U.PTR] * 10 + [U.F32],
                              ["q", "k", "v", "past", "decay", "beta", "y", "present", "work",
                               "plan", "scale"])
        _LinearAttention(b, spec, fn.args).emit()
        b.ret_void()
        return fn

    return Kernel(spec.name, (PTR,) * 10 + (F32,), build)


class _LinearAttention:
    def __init__(self, b: ir.IRBuilder, spec: LinearAttentionSpec, args):
        self.b, self.spec = b, spec
        (self.q, self.k, self.v, self.past, self.decay, self.beta, self.y, self.present,
         self.state, plan, self.scale) = args
        self.p = dict(zip(LA_PLAN, load_table(b, plan, len(LA_PLAN)), strict=True))
        self.fresh = b.gep(self.state, [b.mul(b.mul(self.p["dk"], self.p["dv"]), U.i64(4))],
                           source_etype=U.I8)  # dv floats after the state: v - retrieved
        self.acc = entry_alloca(b, U.F32, "acc")

    def _ld(self, ptr: ir.Value, i: ir.Value) -> ir.Value:
        dt = self.spec.dtype
        return to_compute(self.b, U.load(self.b, ptr, i, storage_type(dt)), dt)

    def _st(self, v: ir.Value, ptr: ir.Value, i: ir.Value) -> None:
        U.store(self.b, to_storage(self.b, v, self.spec.dtype), ptr, i)

    def _s(self, d: ir.Value, m: ir.Value) -> ir.Value:
        return self.b.add(self.b.mul(d, self.p["dv"]), m)

    def _row(self, bi: ir.Value, t: ir.Value, width: ir.Value) -> ir.Value:
        """Start of a [B, T, width] tensor's row (bi, t)."""
        b = self.b
        return b.mul(b.add(b.mul(bi, self.p["steps"]), t), width)

    def emit(self) -> None:
        b, p = self.b, self.p
        dk, dv = p["dk"], p["dv"]
        with nested_loops(b, [p["batch"], p["kv_heads"]]) as (bi, hk):
            cache = b.mul(b.add(b.mul(bi, p["kv_heads"]), hk), b.mul(dk, dv))
            with nested_loops(b, [dk, dv], name="init") as (d, m):
                v = self._ld(self.past, b.add(cache, self._s(d, m))) if self.spec.past \
                    else U.f32(0.0)
                U.store(b, v, self.state, self._s(d, m))
            with U.for_range(b, U.i64(0), p["steps"], name="t") as t:
                self._step(bi, hk, t)
            with nested_loops(b, [dk, dv], name="out") as (d, m):
                self._st(U.load(b, self.state, self._s(d, m)), self.present,
                         b.add(cache, self._s(d, m)))

    def _step(self, bi: ir.Value, hk: ir.Value, t: ir.Value) -> None:
        b, p, spec = self.b, self.p, self.spec
        dk, dv = p["dk"], p["dv"]
        k_at = b.add(self._row(bi, t, b.mul(p["kv_heads"], dk)), b.mul(hk, dk))
        v_at = b.add(self._row(bi, t, b.mul(p["kv_heads"], dv)), b.mul(hk, dv))
        if spec.gated:
            per_head = spec.decay_per_head
            width = p["kv_heads"] if per_head else b.mul(p["kv_heads"], dk)
            g_at = b.add(self._row(bi, t, width), hk if per_head else b.mul(hk, dk))
            with nested_loops(b, [dk, dv], name="decay") as (d, m):
                g = self._ld(self.decay, g_at if per_head else b.add(g_at, d))
                s = b.fmul(U.load(b, self.state, self._s(d, m)), M.exp_f32(b, g))
                U.store(b, s, self.state, self._s(d, m))
        with U.for_range(b, U.i64(0), dv, name="m") as m:
            v = self._ld(self.v, b.add(v_at, m))
            if spec.delta:
                retrieved = self._dot(lambda d: self._ld(self.k, b.add(k_at, d)),
                                      lambda d: U.load(b, self.state, self._s(d, m)))
                width = U.i64(1) if spec.beta_shared else p["kv_heads"]
                beta = self._ld(self.beta, b.add(self._row(bi, t, width),
                                                  U.i64(0) if spec.beta_shared else hk))
                v = b.fmul(beta, b.fsub(v, retrieved))
            U.store(b, v, self.fresh, m)
        with nested_loops(b, [dk, dv], name="update") as (d, m):
            kv = b.fmul(self._ld(self.k, b.add(k_at, d)), U.load(b, self.fresh, m))
            U.store(b, b.fadd(U.load(b, self.state, self._s(d, m)), kv), self.state,
                    self._s(d, m))
        group = b.sdiv(p["q_heads"], p["kv_heads"])
        with nested_loops(b, [group, dv], name="read") as (g, m):
            hq = b.add(b.mul(hk, group), g)
            q_at = b.add(self._row(bi, t, b.mul(p["q_heads"], dk)), b.mul(hq, dk))
            out = self._dot(lambda d: self._ld(self.q, b.add(q_at, d)),
                            lambda d: U.load(b, self.state, self._s(d, m)))
            y_at = b.add(self._row(bi, t, b.mul(p["q_heads"], dv)), b.mul(hq, dv))
            self._st(b.fmul(self.scale, out), self.y, b.add(y_at, m))

    def _dot(self, left, right) -> ir.Value:
        """sum over d < dk of left(d) * right(d)."""
        b = self.b
        b.store(U.f32(0.0), self.acc)
        with U.for_range(b, U.i64(0), self.p["dk"], name="d") as d:
            b.store(b.fadd(b.load(self.acc, typ=U.F32), b.fmul(left(d), right(d))), self.acc)
        return b.load(self.acc, typ=U.F32)
