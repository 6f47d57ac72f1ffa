"""tinyc as an `onnx.backend.base.Backend`, so onnx's backend test suite and
tools written against that API run models through tinyc.

    import tinyc.backend as backend
    rep = backend.prepare(model, "CPU")          # compiles once
    (y,) = rep.run([x])                          # positional or {name: array}
    (y,) = backend.run_model(model, [x])         # compile and run
    (y,) = backend.run_node(node, [x])           # one NodeProto as a model

Only the host CPU is a device here; `target=` (a kwarg of prepare / run_model)
picks the tinyc target, "x86" by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, shape_inference
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from .compiler import CompileOptions
from .session import InferenceSession


class TinycRep(BackendRep):
    """A compiled model; `run` takes inputs in the order of the model's graph
    inputs (initializers excluded), or a dict by name."""

    def __init__(self, session: InferenceSession):
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        feeds = self._feeds(inputs)
        outputs = self.session.run(None, feeds)
        return namedtupledict("Outputs", self.output_names)(*outputs)

    def _feeds(self, inputs: Any) -> dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            return {k: np.asarray(v) for k, v in inputs.items()}
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if not isinstance(inputs, Sequence) or len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {_count(inputs)}")
        return {n: np.asarray(a) for n, a in zip(self.input_names, inputs, strict=True)}


def _count(inputs: Any) -> int | str:
    return len(inputs) if isinstance(inputs, Sequence) else type(inputs).__name__


class TinycBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> TinycRep:
        if not cls.supports_device(device):
            raise ValueError(f"tinyc runs on the CPU only, not on {device}")
        super().prepare(model, device, **kwargs)  # onnx.checker
        options = kwargs.get("options") or CompileOptions()
        return TinycRep(InferenceSession(model, target=kwargs.get("target", "x86"),
                                         options=options))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
                 **kwargs: Any) -> tuple[Any, ...]:
        """Run one node: it becomes a one-node model whose inputs are typed by the
        given arrays (and whose outputs by `outputs_info`, when known)."""
        super().run_node(node, inputs, device, outputs_info, **kwargs)  # onnx.checker
        arrays = [np.asarray(a) for a in (inputs.values() if isinstance(inputs, Mapping)
                                          else inputs)]
        present = [name for name in node.input if name]
        graph_inputs = [helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for name, a in zip(present, arrays, strict=True)]
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        graph = helper.make_graph([node], "run_node", graph_inputs,
                                  _output_infos(node, graph_inputs, opset, outputs_info))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.prepare(model, device, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            return Device(device).type == DeviceType.CPU
        except (AttributeError, ValueError):
            return False


def _output_infos(node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto], opset: int,
                  given: Sequence[tuple[np.dtype, tuple[int, ...]]] | None
                  ) -> list[onnx.ValueInfoProto]:
    """The node's output types: as given in outputs_info, else as ONNX infers them."""
    names = [o for o in node.output if o]
    if given:
        return [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(t)),
                                              shape) for n, (t, shape) in zip(names, given,
                                                                                strict=True)]
    probe = helper.make_model(helper.make_graph([node], "probe", inputs, []),
                              opset_imports=[helper.make_opsetid("", opset)])
    inferred = {vi.name: vi for vi in shape_inference.infer_shapes(probe).graph.value_info}
    missing = [n for n in names if n not in inferred]
    if missing:
        raise ValueError(f"cannot infer the type of {missing}; pass outputs_info")
    return [inferred[n] for n in names]


prepare = TinycBackend.prepare
run_model = TinycBackend.run_model
run_node = TinycBackend.run_node
supports_device = TinycBackend.supports_device
is_compatible = TinycBackend.is_compatible
