"""tinyc.InferenceSession: onnxruntime's API over a compiled model."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .compiler import CompileOptions, compile_model
from .link.artifact import Artifact
from .runtime.native import NativeModel, TensorInfo


class InferenceSession:
    """Compile `model` (a path, bytes or onnx.ModelProto) for `target` and run it.

    >>> sess = tinyc.InferenceSession("model.onnx", target="x86")
    >>> (probs,) = sess.run(None, {"input": x})
    """

    def __init__(self, model, target: str = "x86", options: CompileOptions | None = None):
        self.target = target
        self.artifact: Artifact = compile_model(model, target, options)
        self._dir = tempfile.TemporaryDirectory(prefix="tinyc-")
        self._model: NativeModel = self.artifact.load(os.path.join(self._dir.name, "artifact"))

    def get_inputs(self) -> list[TensorInfo]:
        return list(self._model.inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._model.outputs)

    def profile(self) -> list[tuple[str, str, float]]:
        """Per node, its share of the run time so far (compile with profile=True)."""
        return self._model.profile()

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._model.run(output_names, feeds)
