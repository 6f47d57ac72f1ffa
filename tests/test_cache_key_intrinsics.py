"""The compile cache key covers the intrinsic files a spec names (issue 15): the
spec lists a file beside it by name only, so an edited file was served the stale
artifact built with the old intrinsic."""

from __future__ import annotations

import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc

FMA = """\
    set: mine
    requires: [+avx2, +fma]
    intrinsics:
      fma_f32_1xLANES:
        compute: C[i, j] += A[i, k] * B[k, j]
        tile: {i: 1, j: LANES, k: 1}
        dtypes: {A: float32, B: float32, C: float32}
        emit:
          llvm: llvm.fma.vLANESf32
          returns: <LANES x float>
          operands:
            - {tensor: A, type: <LANES x float>, layout: broadcast}
            - {tensor: B, type: <LANES x float>}
            - {tensor: C, type: <LANES x float>}
"""


@pytest.fixture
def target(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    _write_fma(tmp_path, 8)
    spec = tmp_path / "board.yaml"
    spec.write_text("name: board\nextends: x86-avx2\nintrinsics: [mine.yaml]\n")
    return str(spec)


def _write_fma(tmp_path, lanes: int) -> None:
    (tmp_path / "mine.yaml").write_text(textwrap.dedent(FMA).replace("LANES", str(lanes)))


def _matmul() -> onnx.ModelProto:
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 64])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _intrinsics_used(sess: tinyc.InferenceSession) -> str:
    return " ".join(str(row) for row in sess.artifact.report)


def test_an_edited_intrinsic_file_is_not_served_from_the_cache(tmp_path, target):
    model = _matmul().SerializeToString()
    x = np.random.default_rng(1).standard_normal((4, 32)).astype(np.float32)
    want = x @ numpy_helper.to_array(_matmul().graph.initializer[0])

    first = tinyc.InferenceSession(model, target=target)
    assert first.compile_count == 1 and "mine.fma_f32_1x8" in _intrinsics_used(first)
    again = tinyc.InferenceSession(model, target=target)
    assert again.compile_count == 0  # the same files: the cached artifact

    _write_fma(tmp_path, 16)
    edited = tinyc.InferenceSession(model, target=target)
    assert edited.compile_count == 1, "the artifact built with the old intrinsic was reused"
    assert "mine.fma_f32_1x16" in _intrinsics_used(edited)
    (y,) = edited.run(None, {"x": x})
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert len(list((tmp_path / "cache").iterdir())) == 2
