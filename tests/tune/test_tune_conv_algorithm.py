"""The depthwise convolution's algorithm is a declared knob where both are
legal (unit W-stride): taps from a zero-padded copy of each plane, or masked
loads straight from the input. The default is the untuned heuristic; a record
switches the kernel and not the numbers; a stride-2 conv has one algorithm
and asks nothing."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyc.codegen.kernels.gemm.conv_direct import DepthwiseSpec
from tinyc.compiler import CompileOptions, compile_model
from tinyc.lower.conv_schedule import KERNEL
from tinyc.schedule import TuningRecord
from tinyc.schedule.database import append_records
from tinyc.tune.tasks import extract_tasks


def _depthwise_model(size: int, stride: int = 1, c: int = 16):
    w = np.random.default_rng(2).standard_normal((c, 1, 3, 3)).astype(np.float32)
    out = (size + 2 - 3) // stride + 1
    node = helper.make_node("Conv", ["X", "W"], ["Y"], name="dw", group=c, pads=[1, 1, 1, 1],
                            strides=[stride, stride])
    graph = helper.make_graph(
        [node], "dw", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, c, size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, c, out, out])],
        [numpy_helper.from_array(w, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _kernel(art) -> str:
    (row,) = [r for r in art.report if r["node"] == "dw"]
    (name,) = row["kernels"]
    return name


@pytest.mark.parametrize("size,stride", [(7, 1), (20, 1), (7, 2), (20, 2)])
def test_the_depthwise_algorithm_is_a_knob(tmp_path, size, stride):
    """Rows of one vector (direct by default) and wider, at W-strides 1 and 2."""
    model, target = _depthwise_model(size, stride), "x86-avx2"
    (task,) = extract_tasks(model, target, CompileOptions(default_tuning=False))
    (knob,) = task.tunable.space.knobs
    assert task.tunable.workload.kernel == KERNEL and knob.name == "algorithm"
    direct = DepthwiseSpec.direct_pays(stride, (size - 1) // stride + 1, 8)  # AVX2: 8 lanes
    assert knob.default == ("direct" if direct else "padded")
    other = "padded" if direct else "direct"
    log = tmp_path / "dw.jsonl"
    append_records(log, [TuningRecord(task.tunable.workload, {"algorithm": other}, (1e-6,),
                                      0.0)])
    plain = compile_model(model, target, CompileOptions(default_tuning=False))
    tuned = compile_model(model, target, CompileOptions(tuning_log=str(log)))
    assert ("_direct" in _kernel(plain)) == direct
    assert ("_direct" in _kernel(tuned)) == (not direct)
    x = np.random.default_rng(0).standard_normal((1, 16, size, size)).astype(np.float32)
    (want,) = plain.load(tmp_path / "plain").run(None, {"X": x})
    (got,) = tuned.load(tmp_path / "tuned").run(None, {"X": x})
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_a_stride_3_depthwise_conv_has_one_algorithm():
    tasks = extract_tasks(_depthwise_model(20, stride=3), "x86-avx2",
                          CompileOptions(default_tuning=False))
    assert [t for t in tasks if t.tunable.workload.kernel == KERNEL] == []
