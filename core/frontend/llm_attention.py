"""com.microsoft GroupQueryAttention and RotaryEmbedding (and ONNX opset 23's
RotaryEmbedding) written as standard ONNX ops; the attention itself becomes
ONNX Attention (opset 25), which tinyc lowers to its fused attention kernel.

GroupQueryAttention, as onnxruntime's CPU kernel computes it:
- packed QKV (key and value absent): split the last axis into H, Hk, Hk heads;
- rotary (do_rotary) on Q and the new K: position of token s of batch entry b is
  seqlens_k[b] + 1 - S + s (its absolute position: seqlens_k[b] + 1 is the
  entry's total length), or position_ids when given;
- present = concat(past, new) (past and present in [B, Hk, T, D]: the
  non-shared buffers the model builder emits for CPU; the entries of a batch
  are assumed unpadded on the left, as for onnxruntime-genai's CPU models);
- attention over keys j < seqlens_k[b] + 1, causal from that position, the
  sliding window keeping keys j > position - local_window_size, softcap.
  ONNX Attention on [B, H, S, D] tensors (the cache concatenated here: ONNX
  forbids key padding with its own cache inputs) with nonpad_kv_seqlen =
  seqlens_k + 1, is_causal and left_window_size is exactly that: its causal
  frontier for a padded entry is the entry's own length minus S.

Rotary (non-interleaved, rotary dims R = 2 * cos_cache.shape[1] <= D):
    y[:R/2] = x[:R/2] cos - x[R/2:R] sin;  y[R/2:R] = x[R/2:R] cos + x[:R/2] sin
interleaved pairs (x[2i], x[2i+1]) the same way; dims past R pass through.
"""

from __future__ import annotations

import numpy as np

from .llm_emit import Emitter, attr, heads_first, inputs, refuse, with_past

ATTENTION_OPSET = 25  # ONNX Attention with nonpad_kv_seqlen and left_window_size


def decompose_gqa(em: Emitter, hidden: int | None) -> int:
    """Rewrite one GroupQueryAttention; `hidden` is the query's last dim (known
    from shape inference). Returns the head size."""
    node = em.node
    (query, key, value, past_k, past_v, seqlens_k, _total, cos, sin, position_ids,
     bias, sink) = inputs(node, 12)
    y, present_k, present_v = (list(node.output) + ["", ""])[:3]
    heads, kv_heads = int(attr(node, "num_heads")), int(attr(node, "kv_num_heads"))
    _refuse_unsupported(node, bias, sink, hidden)
    packed = not key
    head = hidden // (heads + 2 * kv_heads) if packed else hidden // heads
    q, k, v = query, key, value
    if packed:
        sizes = em.const([heads * head, kv_heads * head, kv_heads * head], np.int64, "split")
        q, k, v = em.fresh("q"), em.fresh("k"), em.fresh("v")
        em.op_n("Split", [query, sizes], [q, k, v], axis=-1)
    lengths = em.op("Add", [em.op("Cast", [seqlens_k], to=7), em.const([1], np.int64, "one")])
    if int(attr(node, "do_rotary", 0)):
        positions = position_ids or _positions(em, q, lengths)
        interleaved = bool(attr(node, "rotary_interleaved", 0))
        q = rotary(em, q, positions, cos, sin, heads, head, interleaved)
        k = rotary(em, k, positions, cos, sin, kv_heads, head, interleaved)
    scale = float(attr(node, "scale", 0.0)) or 1.0 / float(np.sqrt(head))
    window = int(attr(node, "local_window_size", -1))
    # onnxruntime keeps the `window` latest keys (the query's own included):
    # ONNX's left_window_size counts the keys before it
    extra = {"left_window_size": window - 1} if window > 0 else {}
    q4 = heads_first(em, q, heads, head)
    k4 = with_past(em, heads_first(em, k, kv_heads, head), past_k, present_k)
    v4 = with_past(em, heads_first(em, v, kv_heads, head), past_v, present_v)
    y4 = em.op("Attention", [q4, k4, v4, "", "", "", lengths], scale=scale, is_causal=1,
               softcap=float(attr(node, "softcap", 0.0)), **extra)
    em.op("Reshape", [em.op("Transpose", [y4], perm=[0, 2, 1, 3]),
                      em.const([0, 0, heads * head], np.int64, "shape")], y)
    return head


def _refuse_unsupported(node, bias: str, sink: str, hidden: int | None) -> None:
    for name, bad in (("attention_bias", bias), ("head_sink", sink),
                      ("smooth_softmax=1", attr(node, "smooth_softmax", 0)),
                      ("qk_output", attr(node, "qk_output", 0) or len(node.output) > 3),
                      ("local_window_size=0", int(attr(node, "local_window_size", -1)) == 0)):
        if bad:
            raise refuse(node, f"{name} is not supported")
    if hidden is None:
        raise refuse(node, "the query's last dimension is not known at compile time")


def _positions(em: Emitter, x: str, lengths: str) -> str:
    """int64 [B, S]: lengths[b] - S + s."""
    seq = em.op("Shape", [x], start=1, end=2)
    steps = em.op("Range", [em.const(0, np.int64, "zero"), em.op("Squeeze", [seq]),
                            em.const(1, np.int64, "step")])
    first = em.op("Sub", [em.op("Unsqueeze", [lengths, em.const([1], np.int64, "axis")]), seq])
    return em.op("Add", [first, steps])


def rotary(em: Emitter, x: str, positions: str, cos_cache: str, sin_cache: str, heads: int,
           head: int, interleaved: bool) -> str:
    """Rotary embedding of x [B, S, heads * head] at int64 positions [B, S]."""
    half = _half_rotary(em, cos_cache, head)
    x4 = em.op("Reshape", [x, em.const([0, 0, heads, head], np.int64, "shape")])
    cos = em.op("Unsqueeze", [em.op("Gather", [cos_cache, positions]),
                              em.const([2], np.int64, "axis")])  # [B, S, 1, R/2]
    sin = em.op("Unsqueeze", [em.op("Gather", [sin_cache, positions]),
                              em.const([2], np.int64, "axis")])
    rotated = _rotate(em, x4, cos, sin, half, head, interleaved)
    return em.op("Reshape", [rotated, em.const([0, 0, heads * head], np.int64, "shape")])


def _half_rotary(em: Emitter, cos_cache: str, head: int) -> int:
    cache = em.constant_value(cos_cache)
    if cache is None or cache.ndim != 2:
        raise refuse(em.node, "a cos_cache that is not a constant [positions, rotary_dim / 2]")
    half = int(cache.shape[1])
    if 2 * half > head:
        raise refuse(em.node, f"rotary dims {2 * half} exceed the head size {head}")
    return half


def _slice(em: Emitter, x: str, start: int, end: int, axis: int = -1) -> str:
    return em.op("Slice", [x, em.const([start], np.int64, "start"),
                           em.const([end], np.int64, "end"), em.const([axis], np.int64, "axes")])


def _rotate(em: Emitter, x4: str, cos: str, sin: str, half: int, head: int,
            interleaved: bool) -> str:
    """x4 [B, S, H, D] with cos / sin [B, S, 1, R/2] -> the rotated x4."""
    if interleaved:
        pairs = em.op("Reshape", [_slice(em, x4, 0, 2 * half),
                                  em.const([0, 0, 0, half, 2], np.int64, "shape")])
        even = em.op("Squeeze", [_slice(em, pairs, 0, 1), em.const([-1], np.int64, "axes")])
        odd = em.op("Squeeze", [_slice(em, pairs, 1, 2), em.const([-1], np.int64, "axes")])
    else:
        even, odd = _slice(em, x4, 0, half), _slice(em, x4, half, 2 * half)
    first = em.op("Sub", [em.op("Mul", [even, cos]), em.op("Mul", [odd, sin])])
    second = em.op("Add", [em.op("Mul", [odd, cos]), em.op("Mul", [even, sin])])
    if interleaved:
        axis = em.const([-1], np.int64, "axes")
        both = em.op("Concat", [em.op("Unsqueeze", [first, axis]),
                                em.op("Unsqueeze", [second, axis])], axis=-1)
        rotated = em.op("Reshape", [both, em.const([0, 0, 0, 2 * half], np.int64, "shape")])
        parts = [rotated]
    else:
        parts = [first, second]
    if 2 * half < head:
        parts.append(_slice(em, x4, 2 * half, head))
    return em.op("Concat", parts, axis=-1) if len(parts) > 1 else parts[0]


def decompose_rotary(em: Emitter, shape: tuple[int, int | None], dims: dict,
                     contrib: bool) -> None:
    """com.microsoft RotaryEmbedding (input, position_ids, cos, sin) or ONNX's
    (X, cos, sin, position_ids). `shape` is the input's (rank, last dim): 3-D
    [B, S, hidden] (heads from num_heads, or from the rotary dims) or 4-D
    [B, N, S, H]. The caches are [positions, R / 2] read at position_ids, or,
    without position_ids (ONNX), already [B, S, R / 2]; constants or inputs
    whose last dim is known."""
    node = em.node
    if contrib:
        x, positions, cos, sin = inputs(node, 4)
        if attr(node, "is_packed_batching", 0) or float(attr(node, "scale", 1.0)) != 1.0:
            raise refuse(node, "is_packed_batching / scale != 1")
        pos = em.constant_value(positions)
        if pos is not None and pos.size == 1:
            raise refuse(node, "a single position offset as position_ids")
    else:
        x, cos, sin, positions = inputs(node, 4)
    rank, last = shape
    if rank not in (3, 4) or last is None:
        raise refuse(node, "an input that is not 3-D or 4-D with a known last dim")
    half = _cache_half(em, cos, dims)
    rot = int(attr(node, "rotary_embedding_dim", 0))
    if rot and rot != 2 * half:
        raise refuse(node, f"rotary_embedding_dim={rot} with a cos_cache of {half} columns")
    heads = int(attr(node, "num_heads", 0))
    if rank == 4:
        head = last
    else:
        heads = heads or last // (rot or 2 * half)
        head = last // heads
    if 2 * half > head:
        raise refuse(node, f"rotary dims {2 * half} exceed the head size {head}")
    # cos / sin [B, S, R/2] -> broadcast over the heads' axis of x4
    cos_bs = em.op("Gather", [cos, positions]) if positions else cos
    sin_bs = em.op("Gather", [sin, positions]) if positions else sin
    heads_axis = em.const([1 if rank == 4 else 2], np.int64, "axis")
    cos4, sin4 = em.op("Unsqueeze", [cos_bs, heads_axis]), em.op("Unsqueeze", [sin_bs, heads_axis])
    interleaved = bool(attr(node, "interleaved", 0))
    if rank == 4:
        out = _rotate(em, x, cos4, sin4, half, head, interleaved)
    else:
        x4 = em.op("Reshape", [x, em.const([0, 0, heads, head], np.int64, "shape")])
        rotated = _rotate(em, x4, cos4, sin4, half, head, interleaved)
        out = em.op("Reshape", [rotated, em.const([0, 0, last], np.int64, "shape")])
    em.op("Identity", [out], node.output[0])


def _cache_half(em: Emitter, cos_cache: str, dims: dict) -> int:
    """R / 2, the cos cache's last dim (known from shapes or its constant value)."""
    known = dims.get(cos_cache, (0, None))[1]
    if known is not None:
        return int(known)
    cache = em.constant_value(cos_cache)
    if cache is None or cache.ndim < 2:
        raise refuse(em.node, "a cos_cache whose last dim is unknown")
    return int(cache.shape[-1])
