"""com.microsoft MultiHeadAttention written as ONNX Attention (opset 25) on
[B, N, S, H] tensors, as onnxruntime's CPU kernel computes it.

The forms the exporters emit (onnxruntime's transformer optimizer, optimum) and
that tinyc takes:
- self / cross attention: query [B, S, D], key [B, L, D], value [B, L, Dv],
  optional bias [D + D + Dv] added to each before the heads are split;
  past_key / past_value [B, N, P, H] are concatenated in front of the new keys
  (a decoder's self-attention with its cache), present_* = the keys attended;
- cross attention over a cached encoder output: key / value already [B, N, L, H]
  (onnxruntime's "past in kv"), used as they are, present_* = key / value; no
  bias and no past then (onnxruntime refuses both);
- packed QKV, query [B, S, N, 3, H] (bias allowed), and packed KV, key
  [B, L, N, 2, H] (no bias): split into Q, K, V (onnxruntime's CUDA forms; its
  CPU kernel lacks them, so the tests compare with the unpacked node).

Scores follow onnxruntime: scale * Q K^T + attention_bias + mask, where the
mask is mask_filter_value (default -10000, not -inf: a row whose keys are all
padding stays the softmax of its scores) at the keys that key_padding_mask
zeroes; both are one float mask broadcast to [B, N, S, T], which ONNX Attention
adds to its scaled scores. key_padding_mask forms: [B] (the number of valid keys
per entry, keys at and past it masked), [B, T] and [B, S, T] (0 masks).
unidirectional excludes the keys past the causal diagonal of the last S keys
(query s sees keys j <= T - S + s) outright, as onnxruntime does (a padded key
on the diagonal does not bring them back): ONNX Attention's is_causal with
every entry T keys long (nonpad_kv_seqlen).

Refused with a clear error: other ranks (a 4-D query), the [3B + 2] mask,
past_sequence_length / cache_indirection (shared buffers, beam search) and the
qk output.
"""

from __future__ import annotations

import numpy as np

from .llm_emit import Emitter, attr, heads_first, inputs, refuse, with_past

Dims = dict[str, tuple[int, int]]  # value name -> (rank, last dim)


def decompose_mha(em: Emitter, dims: Dims) -> tuple[int, int]:
    """Rewrite one MultiHeadAttention; returns the key and value head sizes (the
    caches' last dims)."""
    node = em.node
    query, key, _, _, pad_mask, attn_bias, _, _, past_len, indirection = inputs(node, 10)
    for name, bad in (("past_sequence_length (shared KV buffers)", past_len),
                      ("cache_indirection (beam search)", indirection),
                      ("the qk output", len(node.output) > 3 and node.output[3])):
        if bad:
            raise refuse(node, f"{name} is not supported")
    q_rank = dims.get(query, (0, None))[0]
    k_rank = dims.get(key, (0, None))[0] if key else 0
    if q_rank == 5:
        q4, k4, v4, head, v_head = _packed_qkv(em, dims)
    elif q_rank == 3 and k_rank == 5:
        q4, k4, v4, head, v_head = _packed_kv(em, dims)
    elif q_rank == 3 and k_rank == 4:
        q4, k4, v4, head, v_head = _cached_kv(em, dims)
    elif q_rank == 3 and k_rank == 3:
        q4, k4, v4, head, v_head = _separate(em, dims)
    elif q_rank == 3 and not key:
        raise refuse(node, "a [B, S, D] query without key / value (DecoderMaskedMultiHeadAttention"
                           "'s packing)")
    else:
        raise refuse(node, f"a {q_rank}-D query with a {k_rank}-D key (known forms: [B, S, D] "
                           "with [B, L, D], [B, N, L, H] or [B, L, N, 2, H]; [B, S, N, 3, H])")
    mask = _score_mask(em, q4, k4, pad_mask, attn_bias, dims)
    scale = float(attr(node, "scale", 0.0)) or 1.0 / float(np.sqrt(head))
    causal = {}
    if int(attr(node, "unidirectional", 0)):
        causal = {"is_causal": 1}  # from key T - S + s on, with every entry T keys long
        mask = [mask, "", "", _lengths(em, q4, k4)]
    else:
        mask = [mask]
    y4 = em.op("Attention", [q4, k4, v4, *mask], scale=scale, **causal)
    heads = int(attr(node, "num_heads"))
    em.op("Reshape", [em.op("Transpose", [y4], perm=[0, 2, 1, 3]),
                      em.const([0, 0, heads * v_head], np.int64, "shape")], node.output[0])
    return head, v_head


Heads = tuple[str, str, str, int, int]  # q4, k4, v4 ([B, N, *, H]), head, v_head


def _last(em: Emitter, name: str, dims: Dims, what: str) -> int:
    last = dims.get(name, (0, None))[1]
    if last is None:
        raise refuse(em.node, f"the {what}'s last dim is not known at compile time")
    return int(last)


def _presents(node) -> tuple[str, str]:
    return tuple((list(node.output) + ["", ""])[1:3])


def _separate(em: Emitter, dims: Dims) -> Heads:
    """query [B, S, D], key [B, L, D], value [B, L, Dv] (+ bias, + past)."""
    node = em.node
    query, key, value, bias, _, _, past_k, past_v = inputs(node, 8)
    heads = int(attr(node, "num_heads"))
    hidden, k_last = _last(em, query, dims, "query"), _last(em, key, dims, "key")
    if not value or dims.get(value, (0, None))[0] != 3:
        raise refuse(node, "a 3-D key without a 3-D value")
    v_last = _last(em, value, dims, "value")
    if hidden % heads or v_last % heads or k_last != hidden:
        raise refuse(node, f"query {hidden}, key {k_last}, value {v_last} are not {heads} heads")
    head, v_head = hidden // heads, v_last // heads
    q, k, v = _add_bias(em, bias, query, key, value, hidden, v_last)
    present_k, present_v = _presents(node)
    return (heads_first(em, q, heads, head),
            with_past(em, heads_first(em, k, heads, head), past_k, present_k),
            with_past(em, heads_first(em, v, heads, v_head), past_v, present_v), head, v_head)


def _cached_kv(em: Emitter, dims: Dims) -> Heads:
    """Past in kv: key / value [B, N, L, H], the cross-attention cache, used as they
    are (present_* = key / value); no bias and no past (onnxruntime's rule)."""
    node = em.node
    query, key, value, bias, _, _, past_k, past_v = inputs(node, 8)
    heads = int(attr(node, "num_heads"))
    if bias or past_k or past_v or not value or dims.get(value, (0, None))[0] != 4:
        raise refuse(node, "key / value in [B, N, L, H] with a bias or a past (or a value "
                           "of another rank)")
    hidden = _last(em, query, dims, "query")
    if hidden % heads:
        raise refuse(node, f"a query of {hidden} is not {heads} heads")
    head = hidden // heads
    # a symbolic head dim of key / value is pinned to this (llm_contrib.py)
    k_last, v_last = dims[key][1] or head, dims[value][1] or head
    if k_last != head:
        raise refuse(node, f"key head size {k_last} does not give the query's {hidden}")
    present_k, present_v = _presents(node)
    return (heads_first(em, query, heads, head), em.op("Identity", [key], present_k or None),
            em.op("Identity", [value], present_v or None), head, v_last)


def _packed_qkv(em: Emitter, dims: Dims) -> Heads:
    """query [B, S, N, 3, H] (no key / value), optional bias [3 * N * H]."""
    node = em.node
    query, key, value, bias, _, _, past_k, past_v = inputs(node, 8)
    if key or value:
        raise refuse(node, "packed QKV with a key or value")
    head = _last(em, query, dims, "query")
    q4, k4, v4 = _unpack(em, query, 3, int(attr(node, "num_heads")), head, bias)
    present_k, present_v = _presents(node)
    return (q4, with_past(em, k4, past_k, present_k), with_past(em, v4, past_v, present_v),
            head, head)


def _packed_kv(em: Emitter, dims: Dims) -> Heads:
    """query [B, S, D], key [B, L, N, 2, H] (no value, no bias)."""
    node = em.node
    query, key, value, bias, _, _, past_k, past_v = inputs(node, 8)
    if value or bias:
        raise refuse(node, "packed KV with a value or a bias")
    heads, head = int(attr(node, "num_heads")), _last(em, key, dims, "key")
    if _last(em, query, dims, "query") != heads * head:
        raise refuse(node, f"packed KV heads of {head} do not give the query's hidden size")
    k4, v4 = _unpack(em, key, 2, heads, head, "")
    present_k, present_v = _presents(node)
    return (heads_first(em, query, heads, head), with_past(em, k4, past_k, present_k),
            with_past(em, v4, past_v, present_v), head, head)


def _unpack(em: Emitter, packed: str, count: int, heads: int, head: int,
            bias: str) -> list[str]:
    """[B, S, N, count, H] -> count tensors [B, N, S, H] (each plus its [N * H]
    slice of the bias)."""
    parts = [em.fresh("part") for _ in range(count)]
    em.op_n("Split", [packed, em.const([1] * count, np.int64, "split")], parts, axis=3)
    biases = [""] * count
    if bias:
        biases = [em.fresh("bias") for _ in range(count)]
        shaped = em.op("Reshape", [bias, em.const([count, heads, head], np.int64, "shape")])
        em.op_n("Split", [shaped, em.const([1] * count, np.int64, "split")], biases, axis=0)
    out = []
    for part, b in zip(parts, biases, strict=True):
        x = em.op("Squeeze", [part, em.const([3], np.int64, "axes")])  # [B, S, N, H]
        if b:
            x = em.op("Add", [x, b])  # [1, N, H] broadcast
        out.append(em.op("Transpose", [x], perm=[0, 2, 1, 3]))
    return out


def _add_bias(em: Emitter, bias: str, q: str, k: str, v: str, hidden: int,
              v_hidden: int) -> tuple[str, str, str]:
    if not bias:
        return q, k, v
    sizes = em.const([hidden, hidden, v_hidden], np.int64, "split")
    parts = [em.fresh("q_bias"), em.fresh("k_bias"), em.fresh("v_bias")]
    em.op_n("Split", [bias, sizes], parts, axis=0)
    return tuple(em.op("Add", [x, b]) for x, b in zip((q, k, v), parts, strict=True))


def _score_mask(em: Emitter, q4: str, k4: str, pad_mask: str, attn_bias: str,
                dims: Dims) -> str:
    """The float mask added to the scaled scores ("" if none): attention_bias
    and mask_filter_value at the padding keys."""
    fill = float(attr(em.node, "mask_filter_value", -10000.0))
    parts = [attn_bias] if attn_bias else []
    if pad_mask:
        parts.append(_padding(em, pad_mask, q4, k4, fill, dims))
    if not parts:
        return ""
    mask = parts[0]
    for part in parts[1:]:
        mask = em.op("Add", [mask, part])
    return mask


def _filled(em: Emitter, masked: str, fill: float, like: str) -> str:
    """fill where the bool `masked` is true, else 0, in the type of `like`."""
    mask = em.op("Where", [masked, em.const(np.float32(fill), hint="fill"),
                           em.const(np.float32(0.0), hint="zero")])
    return em.op("CastLike", [mask, like])


def _padding(em: Emitter, pad_mask: str, q4: str, k4: str, fill: float, dims: Dims) -> str:
    """[B, 1, 1, T] or [B, 1, S, T]: fill at the padding keys. A [B, L] mask (onnxruntime
    also takes L = the new keys) must cover all T keys: the Reshape refuses it at run
    time otherwise, where a shorter mask would silently mean something else."""
    rank = dims.get(pad_mask, (0, 0))[0]
    if rank == 1:  # valid lengths: keys j >= mask[b] are padding
        keys = em.op("Range", [em.const(0, np.int64, "zero"),
                               em.op("Squeeze", [_dim(em, k4, 2)]),
                               em.const(1, np.int64, "step")])
        lengths = em.op("Unsqueeze", [em.op("Cast", [pad_mask], to=7),
                                      em.const([1], np.int64, "axis")])  # [B, 1]
        masked = em.op("GreaterOrEqual", [keys, lengths])  # [B, T]
        return em.op("Unsqueeze", [_filled(em, masked, fill, q4),
                                   em.const([1, 2], np.int64, "axes")])
    if rank in (2, 3):
        masked = em.op("Equal", [pad_mask, em.const(np.int32(0), hint="zero")])
        rows = em.const([1], np.int64, "one") if rank == 2 else _dim(em, q4, 2)
        shape = em.op("Concat", [_dim(em, q4, 0), em.const([1], np.int64, "one"), rows,
                                 _dim(em, k4, 2)], axis=0)
        return em.op("Reshape", [_filled(em, masked, fill, q4), shape])
    raise refuse(em.node, "a key_padding_mask that is not [B], [B, T] or [B, S, T] "
                          "(or whose rank is unknown)")


def _dim(em: Emitter, x: str, axis: int) -> str:
    """int64 [1]: x.shape[axis]."""
    return em.op("Shape", [x], start=axis, end=axis + 1)


def _lengths(em: Emitter, q4: str, k4: str) -> str:
    """int64 [B]: T for every entry (ONNX Attention's causal frontier is then
    T - S + s, the diagonal of the last S keys)."""
    return em.op("Expand", [_dim(em, k4, 2), _dim(em, q4, 0)])
