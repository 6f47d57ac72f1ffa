"""com.microsoft GroupQueryAttention and RotaryEmbedding written as standard
ONNX ops: the attention becomes ONNX Attention (opset 25), rotary ONNX
RotaryEmbedding (opset 23), each of which tinyc lowers to one kernel.

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
    """Rotary embedding of x [B, S, heads * head] at int64 positions [B, S]: ONNX
    RotaryEmbedding, one kernel (lower/rotary.py)."""
    half = _half_rotary(em, cos_cache, head)
    return em.op("RotaryEmbedding", [x, cos_cache, sin_cache, positions], num_heads=heads,
                 interleaved=int(interleaved), rotary_embedding_dim=2 * half)


def _half_rotary(em: Emitter, cos_cache: str, head: int) -> int:
    cache = em.constant_value(cos_cache)
    if cache is None or cache.ndim != 2:
        raise refuse(em.node, "a cos_cache that is not a constant [positions, rotary_dim / 2]")
    half = int(cache.shape[1])
    if 2 * half > head:
        raise refuse(em.node, f"rotary dims {2 * half} exceed the head size {head}")
    return half


def decompose_rotary(em: Emitter, shape: tuple[int, int | None], dims: dict) -> None:
    """com.microsoft RotaryEmbedding (input, position_ids, cos, sin) as ONNX's
    (X, cos, sin, position_ids). `shape` is the input's (rank, last dim): 3-D
    [B, S, hidden] (heads from num_heads, or from the rotary dims) or 4-D
    [B, N, S, H]; the caches are [positions, R / 2]. position_ids is [B, S], or
    one offset [1] (onnxruntime's format 0: token s at offset + s). `scale`
    only matters to onnxruntime when it rebuilds the caches, which its CPU
    kernel does not: it is ignored here too."""
    node = em.node
    x, positions, cos, sin = inputs(node, 4)
    if attr(node, "is_packed_batching", 0):
        raise refuse(node, "is_packed_batching")
    rank, last = shape
    if rank not in (3, 4) or last is None:
        raise refuse(node, "an input that is not 3-D or 4-D with a known last dim")
    half = _cache_half(em, cos, dims)
    rot = int(attr(node, "rotary_embedding_dim", 0))
    if rot and rot != 2 * half:
        raise refuse(node, f"rotary_embedding_dim={rot} with a cos_cache of {half} columns")
    heads = int(attr(node, "num_heads", 0))
    head = last if rank == 4 else last // (heads or last // (rot or 2 * half))
    if 2 * half > head:
        raise refuse(node, f"rotary dims {2 * half} exceed the head size {head}")
    if _is_offset(em, positions, dims):
        positions = _offset_positions(em, x, positions, 2 if rank == 4 else 1)
    extra = {"num_heads": last // head} if rank == 3 else {}
    em.op("RotaryEmbedding", [x, cos, sin, positions], node.output[0],
          interleaved=int(attr(node, "interleaved", 0)), rotary_embedding_dim=2 * half, **extra)


def _is_offset(em: Emitter, positions: str, dims: dict) -> bool:
    pos = em.constant_value(positions)
    return pos.ndim <= 1 if pos is not None else dims.get(positions, (2, None))[0] <= 1


def _offset_positions(em: Emitter, x: str, offset: str, seq_axis: int) -> str:
    """int64 [B, S]: offset + s, for position_ids given as one offset."""
    batch = em.op("Shape", [x], start=0, end=1)
    seq = em.op("Shape", [x], start=seq_axis, end=seq_axis + 1)
    steps = em.op("Range", [em.const(0, np.int64, "zero"), em.op("Squeeze", [seq]),
                            em.const(1, np.int64, "step")])
    row = em.op("Add", [em.op("Reshape", [offset, em.const([1], np.int64, "shape")]), steps])
    return em.op("Expand", [row, em.op("Concat", [batch, seq], axis=0)])


def _cache_half(em: Emitter, cos_cache: str, dims: dict) -> int:
    """R / 2, the cos cache's last dim (known from shapes or its constant value)."""
    known = dims.get(cos_cache, (0, None))[1]
    if known is not None:
        return int(known)
    cache = em.constant_value(cos_cache)
    if cache is None or cache.ndim < 2:
        raise refuse(em.node, "a cos_cache whose last dim is unknown")
    return int(cache.shape[-1])
