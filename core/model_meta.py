"""What InferenceSession reads from, and changes in, the ONNX model before it
compiles: onnxruntime's ModelMetadata, the overridable initializers, and the
SessionOptions that rewrite the model (initializers given by the caller,
free dimensions pinned by name)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import InputError
from .ir import DType
from .runtime.native import TensorInfo


@dataclass(frozen=True)
class ModelMetadata:
    producer_name: str
    graph_name: str
    domain: str
    description: str
    graph_description: str
    version: int
    custom_metadata_map: dict[str, str] = field(default_factory=dict)


def model_metadata(proto: onnx.ModelProto) -> ModelMetadata:
    return ModelMetadata(proto.producer_name, proto.graph.name, proto.domain, proto.doc_string,
                         proto.graph.doc_string, proto.model_version,
                         {p.key: p.value for p in proto.metadata_props})


def overridable_initializers(proto: onnx.ModelProto) -> list[TensorInfo]:
    """Initializers also listed as graph inputs (IR >= 4): a run may feed them,
    as onnxruntime allows; their declared input type is the contract."""
    inits = {t.name: t for t in proto.graph.initializer}
    out = []
    for vi in proto.graph.input:
        if vi.name in inits:
            t = inits[vi.name]
            out.append(TensorInfo(vi.name, list(t.dims), DType.from_onnx(t.data_type).numpy.name))
    return out


def with_fed_initializers(proto: onnx.ModelProto, names: frozenset[str]) -> onnx.ModelProto:
    """The model with these initializers dropped: they stay graph inputs, so the
    compiled artifact takes them as inputs (the other initializers stay constants)."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    keep = [t for t in m.graph.initializer if t.name not in names]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return m


def apply_session_options(proto: onnx.ModelProto, initializers: dict[str, np.ndarray],
                          free_dims: dict[str, int]) -> onnx.ModelProto:
    """SessionOptions.add_initializer values and free-dimension overrides, applied
    to a copy of the model (the original is not changed)."""
    if not initializers and not free_dims:
        return proto
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    _replace_initializers(m, initializers)
    _pin_dims(m, free_dims)
    return m


def _replace_initializers(m: onnx.ModelProto, values: dict[str, np.ndarray]) -> None:
    by_name = {t.name: t for t in m.graph.initializer}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise InputError(f"add_initializer: {unknown} are not initializers of the model; "
                         f"its initializers are {sorted(by_name)}")
    for name, value in values.items():
        old = by_name[name]
        want = np.dtype(DType.from_onnx(old.data_type).numpy)
        if value.dtype != want or list(value.shape) != list(old.dims):
            raise InputError(f"add_initializer: '{name}' is {value.dtype}{list(value.shape)}; "
                             f"the model's is {want}{list(old.dims)}")
        old.CopyFrom(numpy_helper.from_array(value, name))


def _pin_dims(m: onnx.ModelProto, sizes: dict[str, int]) -> None:
    bad = {k: v for k, v in sizes.items() if v < 1}
    if bad:
        raise InputError(f"free dimension sizes must be at least 1: {bad}")
    for vi in m.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in sizes:
                d.dim_value = sizes[d.dim_param]  # clears dim_param (a oneof)


def declared_input_shapes(proto: onnx.ModelProto) -> dict[str, list]:
    """Per graph input (initializers excluded), its dims: numbers, or the
    symbol's name (None for an unnamed one)."""
    inits = {t.name for t in proto.graph.initializer}
    return {vi.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                      for d in vi.type.tensor_type.shape.dim]
            for vi in proto.graph.input if vi.name not in inits}


def branch_flags(proto: onnx.ModelProto) -> list[str]:
    """Boolean scalar inputs that are the condition of a top-level If (an
    optimum merged decoder's `use_cache_branch`): a session compiles the model
    once per value fed, with the flag a constant, so frontend/static_if.py
    replaces the If by the branch that value takes."""
    inits = {t.name for t in proto.graph.initializer}
    conds = {n.input[0] for n in proto.graph.node
             if n.op_type == "If" and n.domain in ("", "ai.onnx") and n.input}
    out = []
    for vi in proto.graph.input:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if vi.name in conds and vi.name not in inits and t.elem_type == onnx.TensorProto.BOOL \
                and dims in ([], [1]):
            out.append(vi.name)
    return out


def with_fixed_flags(proto: onnx.ModelProto, values: dict[str, bool]) -> onnx.ModelProto:
    """The model with these inputs dropped and become constants of these values."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in m.graph.input}
    keep = [vi for vi in m.graph.input if vi.name not in values]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m.graph.initializer.extend(
        numpy_helper.from_array(np.full(shapes[k], bool(v)), k) for k, v in values.items())
    return m
