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
  bias and no past then (onnxruntime asserts both absent).

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

Refused with a clear error: packed QKV [B, S, N, 3, H] and packed KV
[B, L, N, 2, H] (onnxruntime's CPU kernel does not implement them either),
4-D query, the [3B + 2] mask, past_sequence_length / cache_indirection (shared
buffers, beam search) and the qk output.
"""

from __future__ import annotations

import numpy as np

from .llm_emit import Emitter, attr, inputs, refuse

Dims = dict[str, tuple[int, int]]  # value name -> (rank, last dim)


def decompose_mha(em: Emitter, dims: Dims) -> tuple[int, int]:
    """Rewrite one MultiHeadAttention; returns the key and value head sizes (the
    caches' last dims)."""
    node = em.node
    (query, key, value, bias, pad_mask, attn_bias, past_k, past_v, past_len,
     indirection) = inputs(node, 10)
    y, present_k, present_v = (list(node.output) + ["", ""])[:3]
    heads = int(attr(node, "num_heads"))
    q_rank, hidden = dims.get(query, (0, None))
    k_rank, k_last = dims.get(key, (0, None)) if key else (0, None)
    hidden = hidden if q_rank == 3 else None
    _refuse_forms(node, q_rank, hidden, k_rank, value, dims)
    for name, bad in (("past_sequence_length (shared KV buffers)", past_len),
                      ("cache_indirection (beam search)", indirection),
                      ("the qk output", len(node.output) > 3 and node.output[3])):
        if bad:
            raise refuse(node, f"{name} is not supported")
    if hidden % heads:
        raise refuse(node, f"a query of {hidden} is not {heads} heads")
    head = hidden // heads
    v_rank, v_last = dims[value]
    if k_rank == 4:  # past in kv: the cross-attention cache, used as it is
        if bias or past_k or past_v:
            raise refuse(node, "key / value in [B, N, L, H] with a bias or a past")
        if k_last != head:
            raise refuse(node, f"key head size {k_last} is not the query's {head}")
        q4 = _heads_first(em, query, heads, head)
        k4 = em.op("Identity", [key], present_k or None)
        v4 = em.op("Identity", [value], present_v or None)
        v_head = v_last
    else:
        if k_last != hidden:
            raise refuse(node, f"key hidden size {k_last} is not the query's {hidden}")
        if v_last % heads:
            raise refuse(node, f"a value of {v_last} is not {heads} heads")
        v_head = v_last // heads
        q, k, v = _add_bias(em, bias, query, key, value, hidden, v_last)
        q4 = _heads_first(em, q, heads, head)
        k4 = _with_past(em, _heads_first(em, k, heads, head), past_k, present_k)
        v4 = _with_past(em, _heads_first(em, v, heads, v_head), past_v, present_v)
    mask = _score_mask(em, q4, k4, pad_mask, attn_bias, dims)
    scale = float(attr(node, "scale", 0.0)) or 1.0 / float(np.sqrt(head))
    causal = {}
    if int(attr(node, "unidirectional", 0)):
        causal = {"is_causal": 1}  # from key T - S + s on, with every entry T keys long
        mask = [mask, "", "", _lengths(em, q4, k4)]
    else:
        mask = [mask]
    y4 = em.op("Attention", [q4, k4, v4, *mask], scale=scale, **causal)
    em.op("Reshape", [em.op("Transpose", [y4], perm=[0, 2, 1, 3]),
                      em.const([0, 0, heads * v_head], np.int64, "shape")], y)
    return head, v_head


def _refuse_forms(node, q_rank: int, hidden: int | None, k_rank: int, value: str,
                  dims: Dims) -> None:
    if q_rank == 5:
        raise refuse(node, "packed QKV [B, S, N, 3, H]")
    if q_rank != 3 or hidden is None:
        raise refuse(node, "a query that is not [B, S, D] with D known at compile time")
    if k_rank == 5:
        raise refuse(node, "packed KV [B, L, N, 2, H]")
    if k_rank not in (3, 4) or not value or dims.get(value, (0, None))[1] is None:
        raise refuse(node, "key / value that are not [B, L, D] or [B, N, L, H] with known "
                           "last dims (or absent: query-only self-attention)")
    if dims[value][0] != k_rank:
        raise refuse(node, "key and value of different ranks")


def _add_bias(em: Emitter, bias: str, q: str, k: str, v: str, hidden: int,
              v_hidden: int) -> tuple[str, str, str]:
    if not bias:
        return q, k, v
    sizes = em.const([hidden, hidden, v_hidden], np.int64, "split")
    parts = [em.fresh("q_bias"), em.fresh("k_bias"), em.fresh("v_bias")]
    em.op_n("Split", [bias, sizes], parts, axis=0)
    return tuple(em.op("Add", [x, b]) for x, b in zip((q, k, v), parts, strict=True))


def _heads_first(em: Emitter, x: str, heads: int, head: int) -> str:
    """[B, S, heads * head] -> [B, heads, S, head]."""
    x4 = em.op("Reshape", [x, em.const([0, 0, heads, head], np.int64, "shape")])
    return em.op("Transpose", [x4], perm=[0, 2, 1, 3])


def _with_past(em: Emitter, new: str, past: str, present: str) -> str:
    if not past:
        return em.op("Identity", [new], present or None)
    return em.op("Concat", [past, new], present or None, axis=2)


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


def _filled(em: Emitter, masked: str, fill: float) -> str:
    """fill where the bool `masked` is true, else 0 (float32)."""
    return em.op("Where", [masked, em.const(np.float32(fill), hint="fill"),
                           em.const(np.float32(0.0), hint="zero")])


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
        return em.op("Unsqueeze", [_filled(em, masked, fill),
                                   em.const([1, 2], np.int64, "axes")])
    if rank in (2, 3):
        masked = em.op("Equal", [pad_mask, em.const(np.int32(0), hint="zero")])
        rows = em.const([1], np.int64, "one") if rank == 2 else _dim(em, q4, 2)
        shape = em.op("Concat", [_dim(em, q4, 0), em.const([1], np.int64, "one"), rows,
                                 _dim(em, k4, 2)], axis=0)
        return em.op("Reshape", [_filled(em, masked, fill), shape])
    raise refuse(em.node, "a key_padding_mask that is not [B], [B, T] or [B, S, T] "
                          "(or whose rank is unknown)")


def _dim(em: Emitter, x: str, axis: int) -> str:
    """int64 [1]: x.shape[axis]."""
    return em.op("Shape", [x], start=axis, end=axis + 1)


def _lengths(em: Emitter, q4: str, k4: str) -> str:
    """int64 [B]: T for every entry (ONNX Attention's causal frontier is then
    T - S + s, the diagonal of the last S keys)."""
    return em.op("Expand", [_dim(em, k4, 2), _dim(em, q4, 0)])
