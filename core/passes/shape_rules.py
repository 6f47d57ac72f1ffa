"""The shape rules of symbolic shape inference (passes/symbolic_shapes.py):
per op, the outputs' shapes from the inputs' SymDim shapes, and the contents
of the small integer tensors shape chains compute (Shape -> Gather -> Concat
-> Reshape), tracked in ShapeState.values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import ModelError
from ..ir import DType, Graph, Node
from ..ir.symbolic import SymDim, broadcast_shapes, is_one, smax, smin

Dims = tuple  # of int | SymDim
MAX_VALUES = 64  # integer tensors up to this many elements have their contents tracked
INT_TYPES = (DType.int64, DType.int32)
VALUE_TYPES = (DType.int64, DType.int32, DType.bool)  # contents tracked for these


class ShapeState:
    def __init__(self, g: Graph, symbols: Mapping[str, SymDim]):
        self.g = g
        self.symbols = symbols
        self.shapes: dict[str, Dims] = {}
        self.values: dict[str, Dims] = {}  # contents, flattened, of small int tensors

    def shape(self, name: str) -> Dims:
        return self.shapes[name]

    def value(self, name: str) -> Dims | None:
        return self.values.get(name) if name else None

    def const(self, name: str) -> np.ndarray | None:
        return self.g.constants.get(name) if name else None


# ---- rules: (state, node) -> [output shape per output], and st.values ----------

Rule = Callable[[ShapeState, Node], list]
RULES: dict[str, Rule] = {}


def _rule(*ops: str):
    def register(fn: Rule) -> Rule:
        for op in ops:
            RULES[op] = fn
        return fn
    return register


def broadcast(*shapes: Dims) -> Dims:
    try:
        return broadcast_shapes(*shapes)
    except ValueError as e:
        raise ModelError(str(e)) from None


_SAME_SHAPE = ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Erf", "Neg", "Abs", "Sqrt",
               "Reciprocal", "Softmax", "LogSoftmax", "Gelu", "LeakyRelu", "Clip", "Identity",
               "Not", "CastLike", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "HardSigmoid",
               "HardSwish", "Softplus", "IsNaN", "IsInf", "Trilu", "CumSum", "Elu", "Selu",
               "LayerNormalization", "Dropout", "InstanceNormalization", "Swish", "Celu", "Mish",
               "BatchNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
               "RotaryEmbedding")


@_rule(*_SAME_SHAPE)
def _same(st: ShapeState, node: Node) -> list:
    out = [st.shape(node.inputs[0])]
    if node.op in ("Identity", "Dropout") and (v := st.value(node.inputs[0])) is not None:
        st.values[node.outputs[0]] = v
    return out


_ARITH = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
          "Div": lambda a, b: a // b if not _negative_hint(a, b) else None,
          "Max": smax, "Min": smin,
          # comparisons give bools (decided for every size, or guarded)
          "Equal": lambda a, b: int(a == b), "Less": lambda a, b: int(a < b),
          "Greater": lambda a, b: int(a > b), "LessOrEqual": lambda a, b: int(a <= b),
          "GreaterOrEqual": lambda a, b: int(a >= b)}


def _negative_hint(a, b) -> bool:
    """ONNX integer Div truncates; floor division equals it for >= 0 operands."""
    return not (a >= 0 and b > 0)


@_rule("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Equal", "Less", "Greater",
       "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where", "PRelu", "BitShift",
       "Sum", "Mean")
def _broadcasting(st: ShapeState, node: Node) -> list:
    ins = [i for i in node.inputs if i]
    shape = broadcast(*(st.shape(i) for i in ins))
    fn = _ARITH.get(node.op)
    vals = [st.value(i) for i in ins]
    if fn is not None and len(ins) == 2 and all(v is not None for v in vals) \
            and st.g.types[node.outputs[0]].dtype in VALUE_TYPES:
        a, b = vals
        n = max(len(a), len(b))
        if len(a) in (1, n) and len(b) in (1, n):
            res = [fn(a[k % len(a)], b[k % len(b)]) for k in range(n)]
            if all(r is not None for r in res):
                st.values[node.outputs[0]] = tuple(res)
    return [shape]


@_rule("Where")
def _where(st: ShapeState, node: Node) -> list:
    shapes = [st.shape(i) for i in node.inputs[:3]]
    out = broadcast(*shapes)
    vals = [st.value(i) for i in node.inputs[:3]]
    n = len(out) and math.prod(out)
    if all(v is not None for v in vals) and len(out) <= 1 and not isinstance(n, SymDim) \
            and all(len(v) in (1, n) for v in vals):
        c, x, y = vals
        st.values[node.outputs[0]] = tuple(
            x[k % len(x)] if c[k % len(c)] else y[k % len(y)] for k in range(max(n, 1)))
    return [out]


@_rule("GatherND")
def _gather_nd(st: ShapeState, node: Node) -> list:
    data, idx = st.shape(node.inputs[0]), st.shape(node.inputs[1])
    b, last = int(node.attr("batch_dims", 0)), idx[-1]
    if isinstance(last, SymDim):
        return [None]
    return [tuple(idx[:-1]) + tuple(data[b + int(last):])]


@_rule("Shape")
def _shape(st: ShapeState, node: Node) -> list:
    dims = st.shape(node.inputs[0])
    rank = len(dims)
    start, end = int(node.attr("start", 0)), node.attr("end", None)
    end = rank if end is None else int(end)
    picked = dims[slice(start, end)]
    st.values[node.outputs[0]] = tuple(picked)
    return [(len(picked),)]


@_rule("Size")
def _size(st: ShapeState, node: Node) -> list:
    st.values[node.outputs[0]] = (math.prod(st.shape(node.inputs[0])),)
    return [()]


@_rule("Cast")
def _cast(st: ShapeState, node: Node) -> list:
    v = st.value(node.inputs[0])
    if v is not None and DType.from_onnx(int(node.attr("to"))) in INT_TYPES:
        st.values[node.outputs[0]] = v
    return [st.shape(node.inputs[0])]


@_rule("Gather")
def _gather(st: ShapeState, node: Node) -> list:
    data, idx = st.shape(node.inputs[0]), st.shape(node.inputs[1])
    axis = int(node.attr("axis", 0)) % max(len(data), 1)
    v, i = st.value(node.inputs[0]), st.const(node.inputs[1])
    if v is not None and i is not None and len(data) == 1:
        n = len(v)
        if all(-n <= int(k) < n for k in i.reshape(-1)):
            st.values[node.outputs[0]] = tuple(v[int(k) % n] for k in i.reshape(-1))
    return [data[:axis] + idx + data[axis + 1:]]


def _axes(st: ShapeState, node: Node, rank_for_negatives: int) -> list[int] | None:
    a = st.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    axes = a.reshape(-1).tolist() if a is not None else node.attr("axes", None)
    if axes is None:
        return None
    return sorted(int(x) % rank_for_negatives for x in axes)


@_rule("Unsqueeze")
def _unsqueeze(st: ShapeState, node: Node) -> list:
    dims = list(st.shape(node.inputs[0]))
    axes = _axes(st, node, len(dims) + len(_axes_raw(st, node)))
    if axes is None:
        return [None]
    for a in axes:
        dims.insert(a, 1)
    _pass_values(st, node)
    return [tuple(dims)]


def _axes_raw(st: ShapeState, node: Node) -> list:
    a = st.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    return a.reshape(-1).tolist() if a is not None else list(node.attr("axes", []) or [])


@_rule("Squeeze")
def _squeeze(st: ShapeState, node: Node) -> list:
    dims = st.shape(node.inputs[0])
    axes = _axes(st, node, max(len(dims), 1))
    if axes is None:
        axes = [k for k, d in enumerate(dims) if is_one(d)]
    _pass_values(st, node)
    return [tuple(d for k, d in enumerate(dims) if k not in axes)]


def _pass_values(st: ShapeState, node: Node) -> None:
    v = st.value(node.inputs[0])
    if v is not None:
        st.values[node.outputs[0]] = v


@_rule("Concat")
def _concat(st: ShapeState, node: Node) -> list:
    ins = [i for i in node.inputs if i]
    shapes = [st.shape(i) for i in ins]
    axis = int(node.attr("axis")) % len(shapes[0])
    total = sum(s[axis] for s in shapes)
    vals = [st.value(i) for i in ins]
    if all(v is not None for v in vals) and len(shapes[0]) == 1:
        st.values[node.outputs[0]] = tuple(x for v in vals for x in v)
    return [shapes[0][:axis] + (total,) + shapes[0][axis + 1:]]


@_rule("Reshape")
def _reshape(st: ShapeState, node: Node) -> list:
    data = st.shape(node.inputs[0])
    target = st.value(node.inputs[1])
    if target is None:
        return [None]
    allowzero = int(node.attr("allowzero", 0))
    dims = [data[k] if (not allowzero and _is_zero(t)) else t for k, t in enumerate(target)]
    minus = [k for k, t in enumerate(dims) if not isinstance(t, SymDim) and t == -1]
    if minus:
        known = math.prod(d for k, d in enumerate(dims) if k != minus[0])
        total = math.prod(data)
        if total % known != 0:  # decided, or a guard
            raise ModelError(f"Reshape '{node.name}': {total} elements do not divide into "
                             f"{[str(d) for d in target]}")
        dims[minus[0]] = total // known
    _pass_values(st, node)
    return [tuple(dims)]


def _is_zero(d: object) -> bool:
    return not isinstance(d, SymDim) and d == 0


@_rule("Flatten")
def _flatten(st: ShapeState, node: Node) -> list:
    dims = st.shape(node.inputs[0])
    axis = int(node.attr("axis", 1)) % (len(dims) + 1) if dims else 0
    return [(math.prod(dims[:axis]), math.prod(dims[axis:]))]


@_rule("ConstantOfShape")
def _constant_of_shape(st: ShapeState, node: Node) -> list:
    v = st.value(node.inputs[0])
    if v is None:
        return [None]
    fill = node.attr("value", None)
    fill = 0 if fill is None else np.asarray(fill).reshape(-1)[0]
    n = math.prod(v)
    if len(v) == 1 and not isinstance(n, SymDim) and n <= MAX_VALUES \
            and st.g.types[node.outputs[0]].dtype in VALUE_TYPES:
        st.values[node.outputs[0]] = (int(fill),) * n
    return [tuple(v)]


@_rule("Expand")
def _expand(st: ShapeState, node: Node) -> list:
    v = st.value(node.inputs[1])
    if v is None:
        return [None]
    return [broadcast(st.shape(node.inputs[0]), tuple(v))]


@_rule("Tile")
def _tile(st: ShapeState, node: Node) -> list:
    v = st.value(node.inputs[1])
    if v is None:
        return [None]
    return [tuple(d * r for d, r in zip(st.shape(node.inputs[0]), v, strict=True))]


@_rule("Range")
def _range(st: ShapeState, node: Node) -> list:
    start, limit, delta = (st.value(i) for i in node.inputs[:3])
    if start is None or limit is None or delta is None or isinstance(delta[0], SymDim):
        return [None]
    d = int(delta[0])
    if d == 0:
        raise ModelError(f"Range '{node.name}' has delta 0")
    span = limit[0] - start[0] if d > 0 else start[0] - limit[0]
    n = smax(-(-span // abs(d)), 0)
    if not isinstance(n, SymDim) and n <= MAX_VALUES:
        st.values[node.outputs[0]] = tuple(start[0] + k * d for k in range(int(n)))
    return [(n,)]


@_rule("Transpose")
def _transpose(st: ShapeState, node: Node) -> list:
    dims = st.shape(node.inputs[0])
    perm = node.attr("perm", None) or list(reversed(range(len(dims))))
    return [tuple(dims[int(p)] for p in perm)]


@_rule("MatMul")
def _matmul(st: ShapeState, node: Node) -> list:
    a, b = st.shape(node.inputs[0]), st.shape(node.inputs[1])
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    out = broadcast(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [out]


@_rule("Gemm")
def _gemm(st: ShapeState, node: Node) -> list:
    a, b = st.shape(node.inputs[0]), st.shape(node.inputs[1])
    m = a[1] if node.attr("transA", 0) else a[0]
    n = b[0] if node.attr("transB", 0) else b[1]
    return [(m, n)]


@_rule("Slice")
def _slice(st: ShapeState, node: Node) -> list:
    dims = list(st.shape(node.inputs[0]))
    starts, ends = st.value(node.inputs[1]), st.value(node.inputs[2])
    axes = st.value(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else \
        tuple(range(len(starts or ())))
    steps = st.value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else \
        (1,) * len(starts or ())
    if None in (starts, ends, axes, steps) or any(isinstance(x, SymDim) for x in (*axes, *steps)):
        return [None]
    src = st.value(node.inputs[0])
    picked = list(range(len(src))) if src is not None and len(dims) == 1 else None
    for s, e, a, step in zip(starts, ends, axes, steps, strict=True):
        a = int(a) % len(dims)
        lo, hi = _clamp(s, dims[a], int(step)), _clamp(e, dims[a], int(step))
        count = smax(-(-(hi - lo) // int(step)), 0) if step > 0 else \
            smax(-(-(lo - hi) // -int(step)), 0)
        dims[a] = count
        if picked is not None and not any(isinstance(x, SymDim) for x in (lo, hi, count)):
            picked = picked[lo:hi:int(step)]
    if picked is not None and len(picked) == dims[0]:
        st.values[node.outputs[0]] = tuple(src[k] for k in picked)
    return [tuple(dims)]


def _clamp(index, dim, step: int):
    """ONNX Slice's clamping of one start or end to [0, dim] (or [-1, dim-1] for
    negative steps); a comparison on symbols is decided or guarded."""
    if not isinstance(index, SymDim) and index < 0:
        index = index + dim
    lo, hi = (0, dim) if step > 0 else (-1, dim - 1)
    if not isinstance(index, SymDim) and index >= 2 ** 62:  # INT64_MAX: "to the end"
        return hi
    return smin(smax(index, lo), hi)


@_rule("Split")
def _split(st: ShapeState, node: Node) -> list:
    dims = st.shape(node.inputs[0])
    axis = int(node.attr("axis", 0)) % len(dims)
    sizes = st.value(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else \
        node.attr("split", None)
    n = len(node.outputs)
    if sizes is None:
        if not isinstance(dims[axis], SymDim) or dims[axis] % n != 0:
            return [None] * n
        sizes = [dims[axis] // n] * n
    return [dims[:axis] + (s,) + dims[axis + 1:] for s in sizes]


@_rule("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
       "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin")
def _reduce(st: ShapeState, node: Node) -> list:
    dims = st.shape(node.inputs[0])
    if node.op in ("ArgMax", "ArgMin"):
        axes = [int(node.attr("axis", 0)) % len(dims)]
    else:
        axes = _axes(st, node, max(len(dims), 1))
        if axes is None:
            if node.inputs[1:] and node.inputs[1]:
                return [None]
            axes = [] if node.attr("noop_with_empty_axes", 0) else list(range(len(dims)))
    keep = int(node.attr("keepdims", 1))
    return [tuple((1 if k in axes else d) for k, d in enumerate(dims) if keep or k not in axes)]

