"""Lowering of ONNX RotaryEmbedding (opset 23) to one kernel
(codegen/kernels/ops/rotary.py), which the frontend also uses for
onnxruntime's GroupQueryAttention (do_rotary) and com.microsoft RotaryEmbedding.

X is 3-D [B, S, H * D] (num_heads) or 4-D [B, H, S, D]; the caches are
[max_positions, R / 2] read at position_ids [B, S], or, without position_ids,
already [B, S, R / 2]. Run-time position ids are checked to lie in
[0, max_positions - 1] first, as Gather's indices are (indexing.index_checks):
a negative one is refused too, where onnx.reference's numpy indexing would
count it from the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..codegen.kernels.ops import rotary as K
from ..errors import ModelError, NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, LowerContext, LoweredNode
from .broadcast import shape_of
from .indexing import index_checks
from .registry import lowers
from .typed_elementwise import dtype_of


def _layout(node: Node, shape: Sequence[int]) -> tuple[int, int, int, int, tuple[int, ...]]:
    """(B, S, H, D, (stride_b, stride_s, stride_h)) of X in elements."""
    if len(shape) == 4:
        batch, heads, seq, head = shape
        return batch, seq, heads, head, (heads * seq * head, head, seq * head)
    if len(shape) != 3:
        raise ModelError(f"RotaryEmbedding node '{node.name}': input of rank {len(shape)}, "
                         "expected 3 or 4")
    heads = int(node.attr("num_heads", 0))
    batch, seq, hidden = shape
    if heads <= 0 or hidden % heads:
        raise ModelError(f"RotaryEmbedding node '{node.name}': a 3-D input of {hidden} "
                         f"features needs num_heads dividing it (num_heads={heads})")
    head = hidden // heads
    return batch, seq, heads, head, (seq * hidden, hidden, head)


def _half(node: Node, cache: Sequence[int], head: int, tokens: tuple[int, int],
          positions: bool) -> int:
    """R / 2, checked against the attribute, the head size and the cache's shape."""
    rotary = int(node.attr("rotary_embedding_dim", 0)) or head
    want = "[positions, R/2]" if positions else f"[{tokens[0]}, {tokens[1]}, R/2]"
    fits = len(cache) == 2 if positions else tuple(cache[:2]) == tokens and len(cache) == 3
    if rotary % 2 or rotary > head or not fits or cache[-1] * 2 != rotary:
        raise ModelError(f"RotaryEmbedding node '{node.name}': cos/sin caches of shape "
                         f"{list(cache)} for {rotary} rotary dims of a head of {head} "
                         f"(expected {want} with R = {rotary}, even and at most the head)")
    return rotary // 2


@lowers("RotaryEmbedding")
def lower_rotary(node: Node, ctx: LowerContext) -> LoweredNode:
    x, cos, sin = node.inputs[:3]
    pos = node.inputs[3] if len(node.inputs) > 3 else ""
    y = node.outputs[0]
    dtype = dtype_of(ctx, x)
    if dtype not in K.FLOATS or any(dtype_of(ctx, n) != dtype for n in (cos, sin, y)):
        raise NotLowerable(f"RotaryEmbedding on {dtype.name} (kernels: float32, float16, "
                           "bfloat16, the caches of the input's type)")
    if pos and dtype_of(ctx, pos) != DType.int64:
        raise NotLowerable("position_ids that are not int64")
    batch, seq, heads, head, strides = _layout(node, shape_of(ctx, x))
    cache = shape_of(ctx, cos)
    if shape_of(ctx, sin) != cache:
        raise ModelError(f"RotaryEmbedding node '{node.name}': cos_cache {list(cache)} and "
                         f"sin_cache {list(shape_of(ctx, sin))} differ")
    half = _half(node, cache, head, (batch, seq), bool(pos))
    calls = []
    if pos:
        if tuple(shape_of(ctx, pos)) != (batch, seq):
            raise ModelError(f"RotaryEmbedding node '{node.name}': position_ids of shape "
                             f"{list(shape_of(ctx, pos))}, expected [{batch}, {seq}]")
        calls = index_checks(node, ctx, pos, [(0, cache[0] - 1)])
    interleaved = bool(node.attr("interleaved", 0))
    kernel = K.rotary_kernel(dtype, interleaved, bool(pos))
    calls.append(Call(kernel, (Buf(x), Buf(y), Buf(cos), Buf(sin), Buf(pos or x),
                               batch, seq, heads, head, half, *strides)))
    where = "cos[position_ids[b, s]]" if pos else "cos[b, s]"
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y = rotate(x, {where}), {2 * half} of {head} dims"
                                 f"{' interleaved' if interleaved else ''}, {heads} heads",
                       note=f"{kernel.name}: one token's heads per iteration, vectors "
                            "along the rotary half")
