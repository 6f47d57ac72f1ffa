"""Shape rules for ops whose output size depends on input values (NonZero,
Compress, Unique, NonMaxSuppression, TopK with a run-time k, reductions over
axes given as run-time data, Slice with run-time parameters ONNX could not size).

Each such size becomes a fresh "unbacked" symbol (ir/symbolic.py,
Tracer.new_unbacked) with an upper bound in the inputs' sizes: NonZero's
count is at most the input's element count, TopK's k at most the axis
length. Memory is planned at the bound, the kernel writes the actual value
into the symbol's slot of the run's dims array, and later kernels read it
from there. Where the deciding input is a constant the size is computed here
instead, as ONNX would.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelError
from ..ir import Graph, Node
from ..ir.symbolic import SymDim, current_tracer
from .shape_rules import RULES, ShapeState, _rule

REDUCE_OPS = frozenset({"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                        "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                        "ReduceSumSquare"})


def runtime_axes(node: Node, g: Graph) -> bool:
    """A reduction over axes that are run-time data."""
    return (not node.domain and node.op in REDUCE_OPS and len(node.inputs) > 1
            and bool(node.inputs[1]) and not g.is_const(node.inputs[1]))


def data_dependent_nodes(g: Graph) -> list[str]:
    """Nodes whose output sizes are known only once their inputs' values are.
    (A TopK, reduction, Slice or Reshape whose run-time parameters ONNX
    nevertheless sized, from the model's declared shapes, is compiled for
    those sizes, and its parameters are checked against them at run time:
    lower/shape_checks.py.)"""
    out = []
    for node in g.nodes:
        if node.domain:
            continue
        if _runtime_sized_by_data(node, g) or _runtime_slice(node, g) \
                or _runtime_reshape(node, g):
            out.append(node.name)
        elif node.op in ("NonZero", "Unique", "NonMaxSuppression") or (
                node.op == "Compress" and not g.is_const(node.inputs[1])):
            out.append(node.name)
    return out


def _sized(g: Graph, value: str) -> bool:
    """Did ONNX give the value a shape of numbers?"""
    t = g.types.get(value)
    return t is not None and all(isinstance(d, int) for d in t.shape)


def _runtime_sized_by_data(node: Node, g: Graph) -> bool:
    """A TopK with a run-time k, or a reduction over run-time axes, that ONNX
    could not size."""
    if node.op == "TopK":
        runtime = len(node.inputs) > 1 and not g.is_const(node.inputs[1])
    else:
        runtime = runtime_axes(node, g)
    return runtime and not _sized(g, node.outputs[0])


def _fresh(bound, what: str) -> SymDim:
    tracer = current_tracer()
    if tracer is None:  # infer_symbolic always runs under the compile's tracer
        raise ModelError(f"{what}: a data-dependent size outside a compile")
    return tracer.new_unbacked(bound, what)


@_rule("NonZero")
def _nonzero(st: ShapeState, node: Node) -> list:
    x = st.shape(node.inputs[0])
    return [(max(len(x), 1), _fresh(math.prod(x), "nonzero"))]


def _axis(node: Node, rank: int) -> int:
    axis = int(node.attr("axis", 0))
    if not -rank <= axis < rank:
        raise ModelError(f"{node.op} '{node.name}': axis {axis} is outside rank {rank}")
    return axis % rank


@_rule("Compress")
def _compress(st: ShapeState, node: Node) -> list:
    x, cond = st.shape(node.inputs[0]), st.const(node.inputs[1])
    flat = node.attr("axis", None) is None
    axis = 0 if flat else _axis(node, len(x))
    n = math.prod(x) if flat else x[axis]
    if cond is not None:  # a constant condition: the count is known now
        picked = int(np.count_nonzero(cond.reshape(-1)[:int(n)]))
    else:
        picked = _fresh(n, "compress")
    return [(picked,) if flat else x[:axis] + (picked,) + x[axis + 1:]]


@_rule("Unique")
def _unique(st: ShapeState, node: Node) -> list:
    x = st.shape(node.inputs[0])
    flat = node.attr("axis", None) is None
    axis = 0 if flat else _axis(node, len(x))
    n = math.prod(x) if flat else x[axis]
    u = _fresh(n, "unique")
    y = (u,) if flat else x[:axis] + (u,) + x[axis + 1:]
    return [y, (u,), (n,), (u,)]


@_rule("TopK")
def _topk(st: ShapeState, node: Node) -> list:
    x = st.shape(node.inputs[0])
    axis = int(node.attr("axis", -1)) % max(len(x), 1)
    k = st.value(node.inputs[1])
    if k is None and not _runtime_sized_by_data(node, st.g):
        return [None, None]  # as declared, checked at run time (lower/shape_checks.py)
    if k is None:
        k = (_fresh(x[axis], "topk"),)
    out = x[:axis] + (k[0],) + x[axis + 1:]
    return [out, out]


@_rule("NonMaxSuppression")
def _nms(st: ShapeState, node: Node) -> list:
    boxes, scores = st.shape(node.inputs[0]), st.shape(node.inputs[1])
    # at most every box of every class of every batch is selected
    return [(_fresh(scores[0] * scores[1] * boxes[1], "nms"), 3)]


def _reduce_rule(original):
    def rule(st: ShapeState, node: Node) -> list:
        if not _runtime_sized_by_data(node, st.g):
            return original(st, node) if original else [None]
        x, naxes = st.shape(node.inputs[0]), math.prod(st.shape(node.inputs[1]))
        if isinstance(naxes, SymDim):
            return [None]
        if naxes == 0:  # all axes or none, whatever the data
            if node.attr("noop_with_empty_axes", 0):
                return [x]
            return [(1,) * len(x) if node.attr("keepdims", 1) else ()]
        if node.attr("keepdims", 1):  # each dim stays or becomes 1 (an empty one too)
            return [tuple(_fresh(_largest((d, 1)), "reduced") for d in x)]
        if naxes > len(x):
            raise ModelError(f"{node.op} '{node.name}': {naxes} axes for rank {len(x)}")
        # the j-th dim kept is one of x[j .. j + naxes]
        kept = len(x) - naxes
        return [tuple(_fresh(_largest(x[j:j + naxes + 1]), "reduced") for j in range(kept))]
    return rule


def _largest(dims):
    """A bound of any of dims: their max where all are numbers, else their sum."""
    return max(dims) if all(isinstance(d, int) for d in dims) else sum(dims)


for _op in REDUCE_OPS:
    RULES[_op] = _reduce_rule(RULES.get(_op))


def _runtime_slice(node: Node, g: Graph) -> bool:
    """A Slice whose parameters are run-time data and whose output ONNX could
    not size (a model that declares the sizes is compiled for them, and its
    parameters are checked: lower/shape_ops.py)."""
    if node.domain or node.op != "Slice" or not node.outputs or not node.outputs[0]:
        return False
    params = [i for i in node.inputs[1:5] if i]
    return not _sized(g, node.outputs[0]) and any(not g.is_const(p) for p in params)


def _slice_rule(original):
    def rule(st: ShapeState, node: Node) -> list:
        derived = original(st, node)
        if derived != [None] or not _runtime_slice(node, st.g):
            return derived
        # each dim: a length in [0, the input's] the kernel computes from the data
        return [tuple(_fresh(d, "sliced") for d in st.shape(node.inputs[0]))]
    return rule


RULES["Slice"] = _slice_rule(RULES["Slice"])


def _runtime_reshape(node: Node, g: Graph) -> bool:
    """A Reshape to a target that is run-time data, whose output ONNX could not
    size, of an input that is not known to be empty."""
    if node.domain or node.op != "Reshape" or g.is_const(node.inputs[1]):
        return False
    x = g.types.get(node.inputs[0])
    empty = x is not None and any(d == 0 for d in x.shape if isinstance(d, int))
    return not _sized(g, node.outputs[0]) and not empty


def _reshape_rule(original):
    def rule(st: ShapeState, node: Node) -> list:
        derived = original(st, node)
        if derived != [None] or not _runtime_reshape(node, st.g):
            return derived
        (n,) = st.shape(node.inputs[1]) or (1,)
        if isinstance(n, SymDim):
            return [None]
        numel = math.prod(st.shape(node.inputs[0]))
        return [tuple(_fresh(numel, "reshaped") for _ in range(int(n)))]
    return rule


RULES["Reshape"] = _reshape_rule(RULES["Reshape"])
