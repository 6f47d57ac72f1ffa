"""Attention (opsets 23-25): 3-D or 4-D inputs, grouped-query heads, float or
boolean masks (broadcast, shorter than the keys), causal and sliding-window
masking, key padding (nonpad_kv_seqlen), softcap, a KV cache (past_key /
past_value -> present_key / present_value) and every qk_matmul_output mode.

The cache outputs are strided copies; the rest is one kernel
(codegen/kernels/ops/attention.py) driven by a plan of dims and strides. The
preview FlexAttention without its subgraphs uses the same kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..codegen.kernels.ops import attention as A
from ..codegen.kernels.ops import attention_keys as KT
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch, int_table
from .broadcast import contiguous_strides, shape_of
from .indexing import elem_bytes
from .misc import copy_call
from .registry import lowers
from .typed_elementwise import dtype_of

FLOATS = (DType.float32, DType.float16, DType.bfloat16)


def _heads(node: Node, ctx: LowerContext, q: str, k: str, v: str) -> dict[str, int]:
    """batch, heads (q and kv), lengths, head sizes, and (b, h, row) strides of Q, K, V."""
    qs, ks, vs = shape_of(ctx, q), shape_of(ctx, k), shape_of(ctx, v)
    if len(qs) == 3:
        hq, hk = int(node.attr("q_num_heads", 0)), int(node.attr("kv_num_heads", 0))
        if not hq or not hk:
            raise NotLowerable("3-D Attention needs q_num_heads and kv_num_heads")
        d, dv = qs[2] // hq, vs[2] // hk
        info = dict(batch=qs[0], heads=hq, kv_heads=hk, q_len=qs[1], new_len=ks[1], head=d,
                    v_head=dv)
        info |= _bhi("q", qs[1] * qs[2], d, qs[2]) | _bhi("k", ks[1] * ks[2], d, ks[2]) \
            | _bhi("v", vs[1] * vs[2], dv, vs[2])
    else:
        hq, hk = qs[1], ks[1]
        info = dict(batch=qs[0], heads=hq, kv_heads=hk, q_len=qs[2], new_len=ks[2], head=qs[3],
                    v_head=vs[3])
        for t, s in (("q", qs), ("k", ks), ("v", vs)):
            info.update(_bhi(t, s[1] * s[2] * s[3], s[2] * s[3], s[3]))
    if hq % hk:
        raise NotLowerable(f"{hq} query heads do not group over {hk} key/value heads")
    return info


def _bhi(t: str, b: int, h: int, i: int) -> dict[str, int]:
    return {f"{t}_b": b, f"{t}_h": h, f"{t}_i": i}


def _cache_copies(node: Node, ctx: LowerContext, info: dict, past: str, new: str,
                  dst: Buf | Scratch, head: int, which: str) -> list[Call]:
    """present = concat(past, new) along the sequence, in [B, Hk, T, head] layout."""
    nbytes = elem_bytes(ctx, new)
    b, hk, n = info["batch"], info["kv_heads"], info["new_len"]
    p = shape_of(ctx, past)[2] if past else 0
    t = p + n
    calls = []
    if p:
        calls.append(copy_call(nbytes, Buf(past), dst, [(b * hk, p * head, t * head)], p * head,
                               1, f"{node.name}.past_{which}"))
    src = (info[f"{which}_b"], info[f"{which}_h"], info[f"{which}_i"])
    dst_at = dst if isinstance(dst, Scratch) else Buf(dst.value, p * head * nbytes)
    if isinstance(dst, Scratch) and p:
        raise NotLowerable("a KV cache without present outputs")  # Scratch takes no offset
    calls.append(copy_call(nbytes, Buf(new), dst_at, [(b, src[0], hk * t * head),
                                                      (hk, src[1], t * head), (n, src[2], head)],
                           head, 1, f"{node.name}.new_{which}"))
    return calls


def _mask_strides(mask_shape: Sequence[int]) -> tuple[list[int], int]:
    """(b, h, i, j) element strides of a mask broadcast right-aligned to 4-D (0 where
    broadcast), and its length along the keys."""
    shape = [1] * (4 - len(mask_shape)) + list(mask_shape)
    strides = contiguous_strides(shape)
    return [0 if n == 1 else s for n, s in zip(shape, strides, strict=True)], shape[3]


@lowers("Attention")
def lower_attention(node: Node, ctx: LowerContext) -> LoweredNode:
    q, k, v, mask, past_k, past_v, nonpad = (list(node.inputs) + [""] * 7)[:7]
    y, present_k, present_v, qk_out = (list(node.outputs) + [""] * 4)[:4]
    dt = dtype_of(ctx, q)
    if dt not in FLOATS or dtype_of(ctx, k) != dt or dtype_of(ctx, v) != dt:
        raise NotLowerable(f"Attention of {dt.name}")
    info = _heads(node, ctx, q, k, v)
    past = shape_of(ctx, past_k)[2] if past_k else 0
    kv_len = past + info["new_len"]
    calls, k_src, v_src = [], Buf(k), Buf(v)
    if past_k or present_k:
        k_src = Buf(present_k) if present_k else Scratch("keys", 8 + ctx.graph.type_of(k).nbytes)
        v_src = Buf(present_v) if present_v else Scratch("values", 8 + ctx.graph.type_of(v).nbytes)
        calls += _cache_copies(node, ctx, info, past_k, k, k_src, info["head"], "k")
        calls += _cache_copies(node, ctx, info, past_v, v, v_src, info["v_head"], "v")
        hk = info["kv_heads"]
        for t, size in (("k", info["head"]), ("v", info["v_head"])):
            info |= _bhi(t, hk * kv_len * size, kv_len * size, size)
    plan = _plan(node, ctx, info, kv_len, past, mask, y)
    mode = int(node.attr("qk_matmul_output_mode", 0)) if qk_out else None
    spec = A.AttentionSpec(dt, dtype_of(ctx, mask) if mask else None, bool(nonpad), mode)
    scale = node.attr("scale")
    scale = 1.0 / math.sqrt(info["head"]) if scale is None else float(scale)
    unused = Const(f"{node.name}.unused", np.zeros(1, np.int64))
    args = (Buf(q), k_src, v_src, Buf(y), Buf(mask) if mask else unused,
            Buf(nonpad) if nonpad else unused, Buf(qk_out) if qk_out else unused,
            _scores(ctx, kv_len), _keys_t(spec, info, kv_len, unused),
            int_table(f"{node.name}.plan", plan), scale, float(node.attr("softcap", 0.0)))
    calls.append(Call(A.attention_kernel(spec), args))
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics="Y = softmax(softcap(scale Q K^T) + bias) V per head "
                                 f"({info['heads']} query heads over {info['kv_heads']} kv heads)",
                       note=f"{spec.name}: one query row at a time, {kv_len} keys (those "
                            "the causal frontier and window leave open), rows split across "
                            "threads" + ("; a prefill scores keys transposed once per call"
                                         if spec.transposed_keys else ""))


def _scores(ctx: LowerContext, kv_len) -> Scratch:
    """A block of rows of scores per thread (each thread takes whole query rows),
    padded for the vectors that score transposed keys."""
    return Scratch("scores", 4 * (kv_len + KT.PAD) * KT.BLOCK_ROWS * max(1, ctx.target.threads))


def _keys_t(spec: A.AttentionSpec, info: dict, kv_len, unused: Const) -> Scratch | Const:
    """Room for the keys transposed, where the kernel may score from them."""
    if not spec.transposed_keys:
        return unused
    return Scratch("keys_t", 4 * KT.transposed_floats(info["batch"], info["kv_heads"],
                                                      info["head"], kv_len))


def _plan(node: Node, ctx: LowerContext, info: dict, kv_len: int, past: int, mask: str,
          y: str) -> list:
    """The kernel's plan (A.PLAN order); symbolic sizes stay SymDims, which the
    entry fills in per run (int_table), so one compile serves every length."""
    hq, sq, dv = info["heads"], info["q_len"], info["v_head"]
    values = dict(info, kv_len=kv_len, reps=hq // info["kv_heads"], past=past,
                  k_j=info["k_i"], v_j=info["v_i"],
                  causal=int(node.attr("is_causal", 0)), left=int(node.attr("left_window_size",
                                                                            -1)),
                  right=int(node.attr("right_window_size", -1)))
    if len(shape_of(ctx, y)) == 3:
        values.update(y_b=sq * hq * dv, y_h=dv, y_i=hq * dv)
    else:
        values.update(y_b=hq * sq * dv, y_h=sq * dv, y_i=dv)
    strides, length = _mask_strides(shape_of(ctx, mask)) if mask else ([0] * 4, 0)
    values.update(m_b=strides[0], m_h=strides[1], m_i=strides[2], m_j=strides[3],
                  mask_len=length if mask else kv_len)
    values.update(o_b=hq * sq * kv_len, o_h=sq * kv_len, o_i=kv_len)
    return [values[name] for name in A.PLAN]


@lowers("ai.onnx.preview.FlexAttention")
def lower_flex_attention(node: Node, ctx: LowerContext) -> LoweredNode:
    """FlexAttention without score_mod / prob_mod subgraphs: plain 4-D attention
    (grouped heads, a scale), the Attention kernel without mask."""
    if node.attr("score_mod") is not None or node.attr("prob_mod") is not None:
        raise NotLowerable("FlexAttention's score_mod / prob_mod subgraphs")
    q, k, v = node.inputs[:3]
    y = node.outputs[0]
    dt = dtype_of(ctx, q)
    if dt not in FLOATS or len(shape_of(ctx, q)) != 4 or dtype_of(ctx, k) != dt \
            or dtype_of(ctx, v) != dt:
        raise NotLowerable(f"FlexAttention of {dt.name} / non 4-D inputs")
    info = _heads(node, ctx, q, k, v)
    plan = _plan(node, ctx, info, info["new_len"], 0, "", y)
    spec = A.AttentionSpec(dt, None, False, None)
    scale = node.attr("scale")
    scale = 1.0 / math.sqrt(info["head"]) if scale is None else float(scale)
    unused = Const(f"{node.name}.unused", np.zeros(1, np.int64))
    call = Call(A.attention_kernel(spec), (Buf(q), Buf(k), Buf(v), Buf(y), unused, unused, unused,
                                           _scores(ctx, info["new_len"]),
                                           _keys_t(spec, info, info["new_len"], unused),
                                           int_table(f"{node.name}.plan", plan), scale, 0.0))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics="Y = softmax(scale Q K^T) V per head",
                       note=f"{spec.name}: the Attention kernel, no mask")
