"""fold_constants: evaluate at compile time every node whose inputs are known.

A node is folded when all its inputs are constants (it is then run once with
onnx's reference evaluator at the graph's opset), or when it only reads the
static type of an input (Shape, Size; CastLike's second input). Folding is what
turns the light model zoo's `ConstantOfShape` weights into real constants that
BN folding and the Conv/Gemm lowerings can use. A result bigger than MAX_FOLDED_BYTES stays a
computation (an Expand of a scalar should not bloat the artifact), unless a
Conv/Gemm/MatMul reads it as a weight.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..ir import DType, Graph, Node, TensorType
from ..ir.casts import float_to_int, is_float_to_int
from .base import FunctionPass
from .contracts import broken_contract
from .rewrite import is_onnx

# ONNX ops whose result is not a function of their inputs.
NONDETERMINISTIC_OPS = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
    "Multinomial", "Bernoulli",
})

# A folded result above this size is kept as a computation, unless it feeds a
# weight slot (those must be constants anyway to be packed at compile time).
MAX_FOLDED_BYTES = 64 << 20

# (op, input index) pairs whose operand the lowerings want as a constant.
_WEIGHT_SLOTS = frozenset({("Conv", 1), ("Conv", 2), ("ConvTranspose", 1), ("ConvTranspose", 2),
                           ("Gemm", 1), ("Gemm", 2), ("MatMul", 1)})


def fold_constants(g: Graph, max_bytes: int = MAX_FOLDED_BYTES) -> Graph:
    constants: dict[str, np.ndarray] = dict(g.constants)
    types = dict(g.types)
    opset = g.opsets.get("", g.opsets.get("ai.onnx", 13))
    size_ok = _SizeLimit(max_bytes, may_exceed=_weight_values(g))
    nodes: list[Node] = []
    for node in g.nodes:
        folded = None
        if size_ok(node.outputs, g.types):  # checked first so a huge result is never built
            folded = _try_fold(node, g, constants, opset)
        if folded is None or not size_ok(folded, {k: TensorType.of(v) for k, v in folded.items()}):
            nodes.append(node)
            continue
        constants.update(folded)
        types.update({name: TensorType.of(value) for name, value in folded.items()})
    return g.with_nodes(nodes, types=types, constants=constants)


class _SizeLimit:
    """A value may become a constant if it is small, or if a weight slot reads it."""

    def __init__(self, max_bytes: int, may_exceed: set[str]):
        self.max_bytes = max_bytes
        self.may_exceed = may_exceed

    def __call__(self, names: Iterable[str], types: Mapping[str, TensorType]) -> bool:
        return all(self._ok(n, types[n]) for n in names if n in types)

    def _ok(self, name: str, t: TensorType) -> bool:
        return not t.is_static or t.nbytes <= self.max_bytes or name in self.may_exceed


def _try_fold(node: Node, g: Graph, constants: Mapping[str, np.ndarray],
              opset: int) -> dict[str, np.ndarray] | None:
    if not is_onnx(node) or node.op in NONDETERMINISTIC_OPS:
        return None
    if node.op == "BatchNormalization" and opset < 14:
        return None  # onnx's reference takes an explicit momentum to mean training mode
    if node.op in ("Shape", "Size"):
        return _fold_from_type(node, g)
    if node.op == "CastLike":
        constants = _with_type_witness(node.inputs[1], g, constants)
    constants = _with_empty_values(node, g, constants)
    if not all(i in constants for i in node.inputs if i):
        return None
    if any(isinstance(v, Graph) for v in node.attrs.values()):
        return None  # control flow: leave to a later stage
    if node.op == "Einsum" and broken_contract(node, g):
        return None  # numpy evaluates some (a diagonal of sizes 0 and 1): left to the check
    args = [constants[i] if i else None for i in node.inputs]
    results = _fold_float_to_int(node, g, args) or evaluate_node(node, args, opset)
    if results is None:
        return None
    folded = dict(zip([o for o in node.outputs if o], results, strict=True))
    return {name: _as_declared(value, g.types.get(name)) for name, value in folded.items()}


def _with_empty_values(node: Node, g: Graph, constants: Mapping[str, np.ndarray]
                       ) -> Mapping[str, np.ndarray]:
    """An input with no elements is known from its type alone (a MatMul over
    K=0 is then folded to the zeros onnxruntime gives)."""
    empty = {}
    for i in node.inputs:
        t = g.types.get(i) if i and i not in constants else None
        if t is not None and all(isinstance(d, int) for d in t.shape) and 0 in t.shape:
            empty[i] = np.zeros(t.shape, t.dtype.numpy)
    return {**constants, **empty} if empty else constants


def _fold_float_to_int(node: Node, g: Graph, args: list) -> list[np.ndarray] | None:
    """A float -> int Cast folds to what the compiled kernel would give
    (tinyc.ir.casts, docs/casts.md): onnx's reference leaves out-of-range values
    to the host CPU, and truncates where 2- and 4-bit types round."""
    out = g.types.get(node.outputs[0])
    if node.op not in ("Cast", "CastLike") or out is None:
        return None
    x = args[0]
    if x is None or x.dtype.kind not in "fV":  # V: bfloat16 and the other ml_dtypes
        return None
    if not is_float_to_int(DType.from_numpy(x.dtype), out.dtype):
        return None
    return [float_to_int(x, out.dtype)]


def _as_declared(value: np.ndarray, declared: TensorType | None) -> np.ndarray:
    """Keep the element type the graph declared: a few reference kernels compute
    in float64 or return Python scalars."""
    if declared is None or value.dtype == declared.dtype.numpy:
        return value
    return value.astype(declared.dtype.numpy)


def _fold_from_type(node: Node, g: Graph) -> dict[str, np.ndarray] | None:
    t = g.types.get(node.inputs[0])
    if t is None or not t.is_static:
        return None
    if node.op == "Size":
        return {node.outputs[0]: np.array(t.numel, dtype=np.int64)}
    shape = list(t.shape)
    start, end = node.attr("start", 0), node.attr("end", len(shape))
    return {node.outputs[0]: np.array(shape[start:end], dtype=np.int64)}


def _with_type_witness(name: str, g: Graph, constants: Mapping[str, np.ndarray]
                       ) -> Mapping[str, np.ndarray]:
    """CastLike reads only the element type of its second input: an empty array
    of that type stands in for a runtime value."""
    t = g.types.get(name)
    if name in constants or t is None:
        return constants
    return {**constants, name: np.zeros(0, t.dtype.numpy)}


def _weight_values(g: Graph) -> set[str]:
    return {n.inputs[k] for n in g.nodes for (op, k) in _WEIGHT_SLOTS
            if n.op == op and len(n.inputs) > k and n.inputs[k]}


def evaluate_node(node: Node, args: list[np.ndarray | None], opset: int) -> list[np.ndarray] | None:
    """Run one ONNX node on numpy arguments (None = omitted input), or None when
    onnx cannot run it. Results come in the order of the node's named outputs."""
    inputs = tuple(f"x{k}" if a is not None else "" for k, a in enumerate(args))
    outputs = tuple(f"y{k}" if o else "" for k, o in enumerate(node.outputs))
    feeds = {x: a for x, a in zip(inputs, args, strict=True) if x}
    try:
        evaluator = _evaluator(node.op, _attr_key(node, opset), inputs, outputs, opset)
        results = evaluator.run(None, feeds)
    except Exception:  # an op onnx cannot evaluate (or a kernel bug) just stays unfolded
        return None
    return [np.asarray(r) for r in results]


def _attr_key(node: Node, opset: int) -> tuple[bytes, ...]:
    """Attributes as serialized protos: hashable, so evaluators can be cached.
    Those equal to the schema's default are left out: the importer spells out
    every default, and some reference kernels reject attributes they do not
    implement (CastLike's round_mode) even when given their default value."""
    defaults = _schema_defaults(node.op, opset)
    return tuple(b for b in (a.SerializeToString() for a in to_onnx_attrs(node.op, node.attrs))
                 if b not in defaults)


@functools.lru_cache(maxsize=512)
def _schema_defaults(op: str, opset: int) -> frozenset[bytes]:
    try:
        schema = onnx.defs.get_schema(op, opset)
    except onnx.defs.SchemaError:
        return frozenset()
    return frozenset(spec.default_value.SerializeToString()
                     for spec in schema.attributes.values() if spec.default_value.type)


@functools.lru_cache(maxsize=256)
def _evaluator(op: str, attr_key: tuple[bytes, ...], inputs: tuple[str, ...],
               outputs: tuple[str, ...], opset: int) -> ReferenceEvaluator:
    node = helper.make_node(op, list(inputs), list(outputs))
    node.attribute.extend(onnx.AttributeProto.FromString(b) for b in attr_key)
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(x, onnx.TensorProto.UNDEFINED, None) for x in inputs if x],
        [helper.make_tensor_value_info(y, onnx.TensorProto.UNDEFINED, None) for y in outputs if y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model)


def to_onnx_attrs(op: str, attrs: Mapping[str, Any]) -> list[onnx.AttributeProto]:
    return [_to_onnx_attr(op, key, attrs[key]) for key in sorted(attrs)]


def _to_onnx_attr(op: str, key: str, value: Any) -> onnx.AttributeProto:
    if isinstance(value, np.ndarray):
        value = numpy_helper.from_array(value)
    if isinstance(value, (list, tuple)) and not value:
        return helper.make_attribute(key, [], attr_type=_schema_attr_type(op, key))
    return helper.make_attribute(key, value)


def _schema_attr_type(op: str, key: str) -> onnx.AttributeProto.AttributeType:
    # An empty list does not say what it is a list of; the schema does.
    return onnx.defs.get_schema(op).attributes[key].type


fold_constants_pass = FunctionPass("fold_constants", fold_constants)
