"""Artifacts: saved, reloaded by the runtime alone, reproducible."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import onnx
from onnx import TensorProto, helper

import tinyc


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = onnx.numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 32])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Tanh", ["m"], ["y"])]
    g = helper.make_graph(nodes, "mlp", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_saved_artifact_runs_without_onnx_or_llvmlite(tmp_path):
    model = _model()
    art = tinyc.compile(model, target="x86")
    art.save(tmp_path / "art")
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                # the `compile` extra and onnxruntime: a runtime-only install has none
                if name.split('.')[0] in ('onnx', 'llvmlite', 'pluggy', 'yaml', 'jsonschema',
                                          'onnxruntime'):
                    raise ImportError('blocked for this test: ' + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import tinyc.runtime
        m = tinyc.runtime.load({str(tmp_path / 'art')!r})
        (y,) = m.run(None, {{'x': np.load({str(tmp_path / 'x.npy')!r})}})
        np.save({str(tmp_path / 'y.npy')!r}, y)
        assert not {{'onnx', 'llvmlite', 'pluggy', 'yaml', 'jsonschema'}} & set(sys.modules)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want = np.tanh(x @ onnx.numpy_helper.to_array(model.graph.initializer[0]))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-5)


def test_identical_inputs_give_byte_identical_artifacts(tmp_path):
    a = tinyc.compile(_model(), target="x86").save(tmp_path / "a")
    b = tinyc.compile(_model(), target="x86").save(tmp_path / "b")
    for name in ("model.so", "weights.bin", "model.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a != b
