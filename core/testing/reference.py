"""Oracles for checking tinyc's results: onnxruntime if installed, else onnx.reference.

Only tests and `tinyc run --check` use these; inference never does.
"""

from __future__ import annotations

import numpy as np


def reference_outputs(model, feeds: dict, names: list[str]) -> tuple[list[np.ndarray], str]:
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        return sess.run(names, feeds), f"onnxruntime {ort.__version__}"
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(model)
    return ref.run(names, feeds), "onnx.reference"
