"""infer_shapes: re-derive the types constant folding has made computable.

ONNX shape inference at import stops where an output's shape depends on an
input's values that its data propagation cannot follow (a Reshape, Expand,
Tile, Pad, Resize, ConstantOfShape, Range or Slice fed by a Div, a Range, a
Where...). Once fold_constants has turned those inputs into constants, onnx's
own per-op inference (`infer_node_outputs`, given the constants as data) can
finish the job: this pass runs it on every node with an output whose shape is
not static yet, in graph order, so each refined type feeds the next node.

An inferred type may fill in unknown or symbolic dimensions; a dimension, rank
or element type that contradicts what the graph already says is a ModelError,
as strict inference is at import. `fold_and_infer` alternates the two passes
until the types stop changing: a newly static shape lets a Shape node fold,
which can make the next shape computable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ..errors import ModelError
from ..ir import DType, Graph, Node, TensorType
from .base import FunctionPass
from .fold_constants import fold_constants, to_onnx_attrs

# Constants bigger than this are not handed to inference as data: the values
# a shape depends on (shapes, pads, scales, Range bounds) are small, weights are not.
MAX_DATA_ELEMENTS = 4096

# fold_and_infer's bound on rounds; each round resolves at least one more
# link of a Shape -> ... -> Reshape -> Shape chain, and real chains are short.
MAX_ROUNDS = 32


def infer_shapes(g: Graph) -> Graph:
    types = dict(g.types)
    for node in g.nodes:
        if all(o in types and types[o].is_static for o in node.outputs if o):
            continue
        for name, found in _infer_node(node, types, g.constants, g.opsets).items():
            types[name] = _refine(name, node, types.get(name), found)
    return g.replace(types=types)


def fold_and_infer(g: Graph) -> Graph:
    for _ in range(MAX_ROUNDS):
        g = fold_constants(g)
        refined = infer_shapes(g)
        if refined.types == g.types:
            return refined
        g = refined
    return g


def _infer_node(node: Node, types: Mapping[str, TensorType], constants: Mapping[str, np.ndarray],
                opsets: Mapping[str, int]) -> dict[str, TensorType]:
    """The output types onnx infers for `node`, or {} when it cannot say (an op
    without an ONNX schema, a subgraph, an input of unknown type)."""
    schema = _schema(node, opsets)
    present = [i for i in node.inputs if i]
    if schema is None or any(i not in types for i in present):
        return {}
    if any(_is_subgraph(v) for v in node.attrs.values()):
        return {}  # control flow: the body's types are not ours to give onnx
    proto = helper.make_node(node.op, list(node.inputs), list(node.outputs), domain=node.domain)
    proto.attribute.extend(to_onnx_attrs(node.op, node.attrs))
    input_types = {i: _type_proto(types[i]) for i in present}
    data = {i: numpy_helper.from_array(constants[i], i) for i in present
            if i in constants and constants[i].size <= MAX_DATA_ELEMENTS}
    opset_ids = [helper.make_opsetid(d, v) for d, v in opsets.items()]
    try:
        found = shape_inference.infer_node_outputs(schema, proto, input_types, data,
                                                   opset_imports=opset_ids)
    except shape_inference.InferenceError as e:
        raise ModelError(f"{node.op} '{node.name}': its shapes are inconsistent once its "
                         f"constant inputs are known: {_first_line(e)}") from None
    return {name: t for name, tp in found.items() if name and (t := _tensor_type(tp))}


def _is_subgraph(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_is_subgraph(v) for v in value)
    return isinstance(value, (Graph, onnx.GraphProto))


def _schema(node: Node, opsets: Mapping[str, int]) -> onnx.defs.OpSchema | None:
    domain = "" if node.domain == "ai.onnx" else node.domain
    version = opsets.get(domain, 1)
    try:
        return onnx.defs.get_schema(node.op, version, domain)
    except onnx.defs.SchemaError:
        return None


def _type_proto(t: TensorType) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(t.dtype.numpy),
                                         list(t.shape))


def _tensor_type(tp: onnx.TypeProto) -> TensorType | None:
    """A TypeProto as a TensorType; None when inference found no element type or no rank."""
    tt = tp.tensor_type
    if not tp.HasField("tensor_type") or not tt.HasField("shape") or not tt.elem_type:
        return None
    try:
        dtype = DType.from_onnx(tt.elem_type)
    except KeyError:
        return None
    # a dim_param onnx made up (unk__0) is not shared with other values: unknown
    dims = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim)
    return TensorType(dtype, dims)  # type: ignore[arg-type]  # None: merged away by _refine


def _refine(name: str, node: Node, old: TensorType | None, found: TensorType) -> TensorType:
    """`old` with the dimensions `found` knows; a contradiction is a ModelError."""
    if old is None:
        return TensorType(found.dtype, tuple(d if d is not None else f"?{name}:{k}"
                                             for k, d in enumerate(found.shape)))
    where = f"'{name}' (output of {node.op} '{node.name}')"
    if found.dtype != old.dtype or found.rank != old.rank:
        raise ModelError(f"{where} is declared {old} but its inputs make it {_show(found)}")
    dims = []
    for had, got in zip(old.shape, found.shape, strict=True):
        if isinstance(had, int) and isinstance(got, int) and had != got:
            raise ModelError(f"{where} is declared {old} but its inputs make it {_show(found)}")
        dims.append(had if isinstance(had, int) or not isinstance(got, int) else got)
    return TensorType(old.dtype, tuple(dims))


def _show(t: TensorType) -> str:
    return str(TensorType(t.dtype, tuple("?" if d is None else d for d in t.shape)))


def _first_line(e: Exception) -> str:
    text = str(e).replace("[ShapeInferenceError] ", "").strip()
    return text.splitlines()[0] if text else type(e).__name__


infer_shapes_pass = FunctionPass("infer_shapes", infer_shapes)
fold_and_infer_pass = FunctionPass("fold_and_infer", fold_and_infer)
