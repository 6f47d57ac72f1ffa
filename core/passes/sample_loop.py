"""Sample-by-sample execution of a batched CNN: when the one symbolic dim is a
batch that every node treats sample by sample, the model can be compiled for
one sample and run depth-first, the whole network per sample in a loop.

Why: a batch of 8 mobilenet_v2 images holds 8x the activations of one (38 MB
at 224x224), more than the last-level cache, so layer after layer streams from
DRAM; one sample's activations stay in cache, and the weights (3.5 MB) are read
again per sample from cache too. Graphs whose weights dominate (an MLP: a GEMM
with M = batch reads its weights once) keep the batched schedule; the choice
is made here, from the shapes.
"""

from __future__ import annotations

import math

from ..ir import Graph, TensorType
from ..ir.symbolic import SymDim

# ops that compute each sample from that sample alone (given the axis rules below)
_PER_SAMPLE = frozenset({
    "Conv", "tinyc.Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Relu", "Clip", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "LeakyRelu", "Add", "Sub",
    "Mul", "Div", "BatchNormalization", "Flatten", "Reshape", "Gemm", "tinyc.Gemm", "MatMul",
    "Softmax", "LogSoftmax", "Concat", "Identity", "Dropout", "LRN", "Transpose"})

# one sample's activations beyond which depth-first pays (about an L2 cache)
MIN_SAMPLE_BYTES = 1 << 20


def sample_loop_symbol(g: Graph) -> str | None:
    """The batch symbol if `g` (with SymDims) is run best sample by sample."""
    symbol = _only_batch_symbol(g)
    if symbol is None or g.dim_values or not any(n.op in ("Conv", "tinyc.Conv")
                                                 for n in g.nodes):
        return None
    if not all(_per_sample(n, g) for n in g.nodes):
        return None
    sample_bytes = max((_sample_bytes(t) for t in g.types.values()), default=0)
    return symbol if sample_bytes >= MIN_SAMPLE_BYTES else None


def with_one_sample(g: Graph, symbol: str) -> Graph:
    """The graph for one sample: the batch dim is 1 everywhere."""
    types = {v: TensorType(t.dtype, tuple(1 if _is_symbol(d, symbol) else d for d in t.shape))
             for v, t in g.types.items()}
    return g.replace(types=types)


def _only_batch_symbol(g: Graph) -> str | None:
    """The one symbol, if it is only ever the leading dim (alone) and leads
    every input and output."""
    symbols: set[str] = set()
    for t in g.types.values():
        for k, d in enumerate(t.shape):
            if isinstance(d, SymDim):
                if k != 0 or len(d.symbols) != 1 or d.poly != SymDim.symbol(
                        next(iter(d.symbols)), 1).poly:
                    return None
                symbols |= d.symbols
    if len(symbols) != 1:
        return None
    (symbol,) = symbols
    ends = [g.types[v] for v in (*g.inputs, *g.outputs)]
    if not all(t.shape and _is_symbol(t.shape[0], symbol) for t in ends):
        return None
    return symbol


def _is_symbol(d: object, symbol: str) -> bool:
    return isinstance(d, SymDim) and d.symbols == {symbol}


def _per_sample(node, g: Graph) -> bool:
    if node.qualified_op not in _PER_SAMPLE:
        return False
    batched = [i for i in node.inputs if i and g.types[i].shape
               and isinstance(g.types[i].shape[0], SymDim)]
    outs = [o for o in node.outputs if o]
    if not all(isinstance(g.types[o].shape[0], SymDim) for o in outs if g.types[o].shape):
        return False  # a node that drops the batch dim mixes samples
    rank = len(g.types[outs[0]].shape) if outs else 0
    axis = node.attr("axis")
    if axis is not None and node.op != "Flatten" and int(axis) % max(rank, 1) == 0:
        return False
    if node.op == "Flatten" and int(node.attr("axis", 1)) == 0:
        return False
    if node.op == "Transpose" and list(node.attr("perm") or [0])[0] != 0:
        return False
    if node.op in ("Gemm", "tinyc.Gemm") and (node.attr("transA", 0) or len(batched) != 1
                                              or batched[0] != node.inputs[0]):
        return False
    if node.op == "MatMul" and (len(batched) != 1 or batched[0] != node.inputs[0]):
        return False
    return bool(batched)


def _sample_bytes(t: TensorType) -> int:
    if not t.shape or not isinstance(t.shape[0], SymDim):
        return 0
    return math.prod(int(d) for d in t.shape[1:]) * t.dtype.itemsize
