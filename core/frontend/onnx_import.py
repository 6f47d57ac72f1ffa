"""ONNX ModelProto -> tinyc Graph.

Shapes come from ONNX shape inference with data propagation; attributes get
their defaults from the op schema of the model's opset, so later stages never
need to know which opset a default came from.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ..errors import InputError, ModelError
from ..ir import DType, Graph, Node, TensorType
from ..passes.infer_shapes import fold_and_infer
from ..runtime.memory import give_back_freed_memory
from .llm_contrib import decompose_llm_ops
from .mapped import MappedModel, load_mapped, without_external
from .quant_contrib_shapes import with_contrib_types
from .static_if import inline_static_ifs
from .unranked import runtime_axes, with_data_dependent_ranks

_DEFAULT_DOMAINS = ("", "ai.onnx")


def import_model(model: str | os.PathLike | bytes | onnx.ModelProto | MappedModel,
                 input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """`input_shapes` pins inputs with symbolic dimensions to concrete ones. A
    path or MappedModel's external tensors become read-only mappings of their
    files (mapped.py), not copies."""
    mapped = load_mapped(model)
    proto = _without_llm_ops(mapped)
    shapes_missing = _check(proto, tolerate_missing_shapes=True)
    if input_shapes:
        proto = with_input_shapes(proto, input_shapes)
    proto = inline_static_ifs(proto)  # an If on a known shape: the branch it takes
    proto = with_contrib_types(proto)  # onnxruntime's quantized ops (com.microsoft)
    opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in proto.opset_import}
    try:
        # strict: a declared shape that contradicts the inferred one is an error
        # here, instead of a buffer too small for what the kernels write.
        inferred = _strictly_inferred(proto)
    except Exception as e:  # onnx raises several exception types here
        raise ModelError(f"the model's shapes are inconsistent: {_first_line(e)}") from None
    if shapes_missing:  # check the rest; _Importer resolves or rejects unknown ranks
        _check(_with_shape_fields(inferred))
    return _Importer(inferred.graph, opsets, mapped.array).graph()


# Ops whose output has their input's shape and type, and whose function body
# onnx's strict inference rejects (onnx 1.23: MeanVarianceNormalization's body
# declares a Constant with two values): inferred as an Identity, then restored.
_SAME_SHAPE_OPS = {("", "MeanVarianceNormalization")}


def _strictly_inferred(proto: onnx.ModelProto) -> onnx.ModelProto:
    nodes = proto.graph.node
    stand_ins = [i for i, n in enumerate(nodes) if (n.domain, n.op_type) in _SAME_SHAPE_OPS]
    if not stand_ins:
        return shape_inference.infer_shapes(proto, strict_mode=True, data_prop=True)
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    for i in stand_ins:
        identity = onnx.helper.make_node("Identity", nodes[i].input[:1], nodes[i].output[:1],
                                         name=nodes[i].name)
        probe.graph.node[i].CopyFrom(identity)
    inferred = shape_inference.infer_shapes(probe, strict_mode=True, data_prop=True)
    for i in stand_ins:  # inference keeps the nodes in place
        inferred.graph.node[i].CopyFrom(nodes[i])
    return inferred


def _without_llm_ops(mapped: MappedModel) -> onnx.ModelProto:
    """onnxruntime-genai's LLM ops rewritten (llm_contrib.py). The rewrites read
    constants from the proto, so they get a copy with the external data read
    in; the tensors they keep then point back into their files again."""
    if not mapped.files:
        return decompose_llm_ops(mapped.proto)
    proto = mapped.externalized(decompose_llm_ops(mapped.inlined()))
    give_back_freed_memory()  # the copy with the data read in, and the rewrites' copies
    return proto


def symbolic_inputs(proto: onnx.ModelProto) -> dict[str, list[int | str]]:
    """Inputs (not initializers) with at least one dimension that is not a number."""
    inits = {t.name for t in proto.graph.initializer}
    out = {}
    for vi in proto.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in vi.type.tensor_type.shape.dim]
        if vi.name not in inits and any(isinstance(d, str) for d in dims):
            out[vi.name] = dims
    return out


def with_input_shapes(proto: onnx.ModelProto,
                      shapes: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    """A copy whose inputs have the given concrete shapes; intermediate and output
    shapes are left for inference to derive again."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    for vi in m.graph.input:
        if vi.name not in shapes:
            continue
        dims = vi.type.tensor_type.shape.dim
        want = [int(d) for d in shapes[vi.name]]
        if len(dims) != len(want):
            raise InputError(f"input '{vi.name}' has rank {len(dims)}; got shape {want}")
        for d, v in zip(dims, want, strict=True):
            if d.HasField("dim_value") and d.dim_value != v:
                raise InputError(f"input '{vi.name}' needs dimension {d.dim_value} where "
                                 f"shape {want} has {v}")
            d.dim_value = v
    del m.graph.value_info[:]
    for vi in m.graph.output:
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.Clear()
    return m


def _with_shape_fields(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose graph inputs and outputs all have a shape field, for the checker
    to look past the ones inference could not fill in."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    for vi in itertools.chain(m.graph.input, m.graph.output):
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.shape.SetInParent()
    return m


def _first_line(e: Exception) -> str:
    text = str(e).replace("[ShapeInferenceError] Inference error(s): ", "").strip()
    return text.splitlines()[0] if text else type(e).__name__


_SHAPE_MISSING = "Field 'shape' of 'type' is required but missing"


def _check(proto: onnx.ModelProto, tolerate_missing_shapes: bool = False) -> bool:
    """Raise ModelError for a malformed model. Outputs declared without a shape are
    valid for onnxruntime, so with `tolerate_missing_shapes` they only make this
    return True (check again once inference has filled them in)."""
    try:
        onnx.checker.check_model(without_external(proto))
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        if tolerate_missing_shapes and first.startswith(_SHAPE_MISSING):
            return True
        raise ModelError(f"the ONNX model is malformed: {first}") from None
    return False


class _Importer:
    def __init__(self, g: onnx.GraphProto, opsets: dict[str, int],
                 constant: Callable[[onnx.TensorProto], np.ndarray] = numpy_helper.to_array):
        self.g = g
        self.opsets = opsets
        self._constant = constant  # an initializer's value (a mapping of its file, or a copy)
        self.types: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}
        self._unknown = itertools.count()
        self.elem_types: dict[str, DType] = {}  # of values ONNX typed without a rank

    def graph(self) -> Graph:
        for init in self.g.initializer:
            self._add_constant(init.name, self._constant(init))
        inputs = tuple(i.name for i in self.g.input if i.name not in self.constants)
        for vi in itertools.chain(self.g.input, self.g.value_info, self.g.output):
            if vi.name in self.constants or not _is_tensor(vi):
                continue
            if vi.type.tensor_type.HasField("shape"):  # else the rank is unknown: untyped
                self.types[vi.name] = self._tensor_type(vi)
            elif (dt := _dtype_or_none(vi.type.tensor_type.elem_type)) is not None:
                self.elem_types[vi.name] = dt
        _check_inputs_ranked(inputs, self.types)
        nodes = []
        for i, n in enumerate(self.g.node):
            if n.op_type == "Constant" and n.domain in _DEFAULT_DOMAINS:
                self._add_constant(n.output[0], _constant_value(n))
            else:
                nodes.append(self._node(n, i))
        outputs = tuple(o.name for o in self.g.output)
        nodes = _drop_unused_untyped_outputs(nodes, self.types, outputs)
        g = Graph(name=self.g.name or "main", inputs=inputs, outputs=outputs,
                  nodes=tuple(nodes), types=self.types, constants=self.constants,
                  opsets=self.opsets)
        if any(runtime_axes(n, g) for n in g.nodes):
            g = with_data_dependent_ranks(g, self.elem_types, self._unknown)
        return _with_ranks_resolved(g)

    def _add_constant(self, name: str, array: np.ndarray) -> None:
        try:
            self.types[name] = TensorType.of(array)
        except KeyError:  # strings, and other element types no kernel holds
            raise ModelError(f"constant '{name}' has element type {array.dtype}, which "
                             f"tinyc does not support") from None
        self.constants[name] = array

    def _tensor_type(self, vi: onnx.ValueInfoProto) -> TensorType:
        tt = vi.type.tensor_type
        try:
            dtype = DType.from_onnx(tt.elem_type)
        except KeyError:
            raise ModelError(f"value '{vi.name}' has an unsupported element type "
                             f"{_type_name(tt.elem_type)}") from None
        dims = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(f"?{next(self._unknown)}")
        return TensorType(dtype, tuple(dims))

    def _node(self, n: onnx.NodeProto, index: int) -> Node:
        domain = "" if n.domain in _DEFAULT_DOMAINS else n.domain
        attrs = {a.name: _attr_value(a) for a in n.attribute}
        attrs = _with_schema_defaults(n.op_type, domain, self.opsets.get(domain, 1), attrs)
        return Node(op=n.op_type, inputs=tuple(n.input), outputs=tuple(n.output),
                    attrs=attrs, name=n.name or f"{n.op_type}_{index}", domain=domain)


def _dtype_or_none(elem_type: int) -> DType | None:
    try:
        return DType.from_onnx(elem_type)
    except KeyError:
        return None


_NON_TENSOR_KINDS = {"sequence_type": "a sequence", "optional_type": "an optional",
                     "map_type": "a map", "sparse_tensor_type": "a sparse tensor"}


def _is_tensor(vi: onnx.ValueInfoProto) -> bool:
    kind = vi.type.WhichOneof("value")
    if kind in (None, "tensor_type"):
        return kind is not None
    what = _NON_TENSOR_KINDS.get(kind, kind)
    raise ModelError(f"value '{vi.name}' is {what}; tinyc supports tensors only")


def _check_inputs_ranked(inputs: tuple[str, ...], types: Mapping[str, TensorType]) -> None:
    unranked = [i for i in inputs if i not in types]
    if unranked:
        raise ModelError(f"input '{unranked[0]}' is declared without a shape (its rank is "
                         "unknown); tinyc compiles static shapes: declare its dimensions")


def _with_ranks_resolved(g: Graph) -> Graph:
    """Values ONNX inference left without a rank are typed once constant folding
    makes their shapes computable; one that stays unknown is a ModelError."""
    if not _untyped(g):
        return g
    g = fold_and_infer(g)
    untyped = _untyped(g)
    if untyped:
        producers = g.producers()
        named = ", ".join(f"'{v}' (output of {producers[v].op} '{producers[v].name}')"
                          if v in producers else f"'{v}'" for v in untyped[:5])
        raise ModelError(f"the rank of {named} is unknown: ONNX shape inference cannot derive "
                         "it, even with constant inputs folded; tinyc compiles static shapes")
    return g


def _untyped(g: Graph) -> list[str]:
    values = [o for n in g.nodes for o in n.outputs if o] + list(g.outputs)
    return list(dict.fromkeys(v for v in values if v not in g.types))


def _drop_unused_untyped_outputs(nodes: list[Node], types: dict, outputs: tuple) -> list[Node]:
    """Optional outputs nobody reads (Dropout's mask) often have no inferred
    type; mark them omitted so every value left in the graph is typed."""
    used = set(outputs) | {i for n in nodes for i in n.inputs}
    return [n.with_(outputs=tuple(o if (o in types or o in used) else "" for o in n.outputs))
            for n in nodes]


def _attr_value(a: onnx.AttributeProto) -> object:
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return [x.decode("utf-8", errors="replace") if isinstance(x, bytes) else x for x in v]
    return v


def _with_schema_defaults(op: str, domain: str, opset: int, attrs: dict) -> dict:
    try:
        schema = onnx.defs.get_schema(op, opset, domain)
    except onnx.defs.SchemaError:
        return attrs  # unknown op: lowering will report it with all the others
    out = dict(attrs)
    for name, spec in schema.attributes.items():
        if name in out or not spec.default_value.type:
            continue
        out[name] = _attr_value(spec.default_value)
    return out


def _constant_value(n: onnx.NodeProto) -> np.ndarray:
    a = n.attribute[0]
    v = _attr_value(a)
    if a.name == "value":
        return np.asarray(v)
    if a.name in ("value_float", "value_floats"):
        return np.asarray(v, np.float32)
    if a.name in ("value_int", "value_ints"):
        return np.asarray(v, np.int64)
    if a.name == "sparse_value":
        raise ModelError(f"Constant '{n.name}': sparse constants are not supported")
    return np.asarray(v)


def _type_name(elem_type: int) -> str:
    """ONNX's name for an element type, or its number if ONNX has none."""
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"number {elem_type} (not an ONNX type)"
