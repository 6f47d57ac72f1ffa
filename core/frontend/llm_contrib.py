"""The ops of LLMs built by onnxruntime-genai's model builder (and ONNX's newer
LLM ops tinyc has no kernel for yet), rewritten into standard ONNX ops before
the model is checked and imported:

    SimplifiedLayerNormalization, RMSNormalization      -> llm_norms.py
    SkipSimplifiedLayerNormalization, SkipLayerNormalization
    MatMulNBits, GatherBlockQuantized                   -> matmul_nbits.py
    QuickGelu, BiasGelu, FastGelu                       -> llm_activations.py
    GroupQueryAttention, com.microsoft RotaryEmbedding  -> llm_attention.py
    MultiHeadAttention                                  -> llm_mha.py
    DequantizeLinear, QuantizeLinear with block_size    -> blocked_quant.py
      (feeding a MatMul with a constant 4 / 8-bit weight: MatMulNBits)

Attention and rotary need the query's last dimension, so they are rewritten in
rounds: ONNX shape inference (on the graph without its weights) types the
input of the next layer's attention once the previous one is standard ops.
The past_* inputs' head dimension, a dim_param such as `kv_cache_dim` in the
builder's models, is pinned to the head size the attention computes, so a
feed of another size is refused at run time instead of read out of bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import onnx
from onnx import helper, numpy_helper, shape_inference

from .blocked_quant import (
    decompose_blocked_dequantize,
    decompose_blocked_quantize,
    element_types,
    fuse_blocked_matmuls,
    is_blocked,
)
from .llm_activations import (
    decompose_bias_gelu,
    decompose_fast_gelu,
    decompose_quick_gelu,
    decompose_swiglu,
)
from .llm_attention import ATTENTION_OPSET, decompose_gqa, decompose_rotary
from .llm_emit import Emitter
from .llm_mha import decompose_mha
from .llm_norms import decompose_rms_norm, decompose_skip_layer_norm, decompose_skip_simplified
from .matmul_nbits import decompose_gather_block_quantized, decompose_matmul_nbits
from .quant_contrib_shapes import without_weights

MS = "com.microsoft"
_DEFAULT = ("", "ai.onnx")

# (domain, op) -> rewrite, for the ops that need no shapes
_SIMPLE: dict[tuple[str, str], Callable[[Emitter], None]] = {
    ("", "SimplifiedLayerNormalization"): decompose_rms_norm,
    ("", "RMSNormalization"): decompose_rms_norm,
    (MS, "SimplifiedLayerNormalization"): decompose_rms_norm,
    (MS, "SkipSimplifiedLayerNormalization"): decompose_skip_simplified,
    (MS, "SkipLayerNormalization"): decompose_skip_layer_norm,
    (MS, "MatMulNBits"): decompose_matmul_nbits,
    (MS, "GatherBlockQuantized"): decompose_gather_block_quantized,
    (MS, "QuickGelu"): decompose_quick_gelu,
    (MS, "BiasGelu"): decompose_bias_gelu,
    (MS, "FastGelu"): decompose_fast_gelu,
    ("", "SwiGLU"): decompose_swiglu,
}
# ONNX's RotaryEmbedding is kept: tinyc lowers it to one kernel (lower/rotary.py)
_SHAPED = {(MS, "GroupQueryAttention"), (MS, "MultiHeadAttention"), (MS, "RotaryEmbedding")}


def _key(node: onnx.NodeProto) -> tuple[str, str]:
    return ("" if node.domain in _DEFAULT else node.domain, node.op_type)


def _simple(node: onnx.NodeProto, types: dict | None = None) -> Callable[[Emitter], None] | None:
    if is_blocked(node):
        if node.op_type == "QuantizeLinear":
            return partial(decompose_blocked_quantize, types=types or {})
        return decompose_blocked_dequantize
    return _SIMPLE.get(_key(node))


def decompose_llm_ops(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `proto` with the ops above rewritten (`proto` itself if it has none)."""
    if not any(_simple(n) or _key(n) in _SHAPED for n in proto.graph.node):
        return proto
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    inits = {t.name: t for t in out.graph.initializer}
    inits |= _reshaped_constants(out.graph, inits)
    fuse_blocked_matmuls(out, inits)
    _rewrite(out, inits, partial(_simple, types=element_types(out.graph)))
    heads: dict[str, int] = {}  # past / present name -> head size
    while any(_key(n) in _SHAPED for n in out.graph.node):
        _use_attention_opset(out)
        dims = _last_dims(out)
        if not _rewrite(out, inits, partial(_shaped_rewrite, dims=dims, heads=heads)):
            _rewrite(out, inits, partial(_shaped_rewrite, dims=dims, heads=heads, last=True))
    _pin_head_dims(out.graph, heads)
    # The builder declares its [1]-shaped int64 constants as scalars in
    # value_info (onnxruntime ignores it); inference recomputes all of it.
    del out.graph.value_info[:]
    _drop_unused_initializers(out.graph, inits)
    return out


def _reshaped_constants(g: onnx.GraphProto, inits: dict) -> dict[str, onnx.TensorProto]:
    """Reshapes of constants by constant shapes (the builder reshapes its tied
    int4 LM head for GatherBlockQuantized), so a rewrite can read their values."""
    known = dict(inits)
    for node in g.node:
        if node.op_type == "Constant" and node.domain in _DEFAULT and node.attribute \
                and node.attribute[0].name == "value":
            known[node.output[0]] = node.attribute[0].t
    out = {}
    for node in g.node:
        if node.op_type == "Reshape" and node.domain in _DEFAULT and len(node.input) == 2 \
                and node.input[0] in known and node.input[1] in known:
            data = numpy_helper.to_array(known[node.input[0]])
            shape = [d if d else data.shape[k]
                     for k, d in enumerate(numpy_helper.to_array(known[node.input[1]]))]
            out[node.output[0]] = numpy_helper.from_array(data.reshape(shape), node.output[0])
    return out


def _rewrite(proto: onnx.ModelProto, inits: dict, pick) -> bool:
    """Replace each node `pick` gives a rewrite for; True if any was replaced."""
    nodes, added, changed = [], [], False
    for node in proto.graph.node:
        rewrite = pick(node)
        if rewrite is None:
            nodes.append(node)
            continue
        em = Emitter(node, inits)
        rewrite(em)
        nodes.extend(em.nodes)
        added.extend(em.new_initializers)
        changed = True
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    proto.graph.initializer.extend(added)
    return changed


def _shaped_rewrite(node: onnx.NodeProto, dims: dict[str, tuple[int, int | None]],
                    heads: dict[str, int], last: bool = False):
    """The rewrite of an attention / rotary node whose input's last dim is known
    (or of any, with `last`: then the rewrite refuses it with a clear error)."""
    key = _key(node)
    if key not in _SHAPED or (dims.get(node.input[0], (0, None))[1] is None and not last):
        return None
    rank, hidden = dims.get(node.input[0], (0, None))
    if key[1] == "RotaryEmbedding":
        return lambda em: decompose_rotary(em, (rank, hidden), dims)
    hidden = hidden if rank == 3 else None  # 4-D inputs are refused
    keys, values = (node.input[3:4], node.output[1:2]), (node.input[4:5], node.output[2:3])
    if key[1] == "MultiHeadAttention":  # the caches, and key / value in [B, N, L, H]
        keys = ((*node.input[6:7], *node.input[1:2]), node.output[1:2])
        values = ((*node.input[7:8], *node.input[2:3]), node.output[2:3])

    def attention(em: Emitter) -> None:
        if key[1] == "GroupQueryAttention":
            head = v_head = decompose_gqa(em, hidden)
        else:
            head, v_head = decompose_mha(em, dims)
        for names, size in ((keys, head), (values, v_head)):
            for name in (*names[0], *names[1]):
                if name:
                    heads[name] = size
    return attention


def _last_dims(proto: onnx.ModelProto) -> dict[str, tuple[int, int | None]]:
    """(rank, last dim) of the values of known rank, once inferred (last dim None
    when it is not a number)."""
    inferred = shape_inference.infer_shapes(without_weights(proto), data_prop=True)
    g = inferred.graph
    dims = {t.name: (len(t.dims), int(t.dims[-1])) for t in g.initializer if t.dims}
    for vi in (*g.input, *g.value_info, *g.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape") or not tt.shape.dim:
            continue
        last = tt.shape.dim[-1]
        dims[vi.name] = (len(tt.shape.dim),
                         int(last.dim_value) if last.HasField("dim_value") else None)
    return dims


def _use_attention_opset(proto: onnx.ModelProto) -> None:
    """ONNX Attention with key padding and a sliding window needs opset 25; the
    ops between the builder's opset and 25 changed only in the types they take."""
    for opset in proto.opset_import:
        if opset.domain in _DEFAULT:
            opset.version = max(opset.version, ATTENTION_OPSET)
            break
    else:
        proto.opset_import.append(helper.make_opsetid("", ATTENTION_OPSET))
    proto.ir_version = max(proto.ir_version,
                           helper.find_min_ir_version_for(list(proto.opset_import), True))


def _pin_head_dims(g: onnx.GraphProto, heads: dict[str, int]) -> None:
    for vi in (*g.input, *g.output):
        head = heads.get(vi.name)
        dims = vi.type.tensor_type.shape.dim
        if head is not None and len(dims) == 4 and not dims[3].HasField("dim_value"):
            dims[3].dim_value = head


def _drop_unused_initializers(g: onnx.GraphProto, inits: dict) -> None:
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
