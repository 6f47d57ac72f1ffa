from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from tinyc.cli import main


def _small_cnn(path) -> str:
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    b = onnx.numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    g = helper.make_graph(nodes, "cnn", [x], [y], [w, b])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return str(path)


def test_targets_lists_x86(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "x86-avx512" in out and "tinyc-backend-x86" not in out.split("\n")[0]


def test_compile_writes_artifact_and_listings(tmp_path, capsys):
    model = _small_cnn(tmp_path / "m.onnx")
    out = tmp_path / "art"
    assert main(["compile", model, "--target", "x86-avx512", "-o", str(out),
                 "--emit", "llvm,asm", "--report"]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["inputs"][0]["shape"] == [1, 3, 16, 16]
    assert (out / "model.so").stat().st_size > 0
    assert "define" in (out / "model.ll").read_text()
    asm = (out / "model.s").read_text()
    assert "zmm" in asm and "vfmadd" in asm  # AVX-512 FMA vector code


def test_run_compiled_folder_with_inputs_and_outputs(tmp_path):
    model = _small_cnn(tmp_path / "m.onnx")
    art = tmp_path / "art"
    assert main(["compile", model, "-o", str(art)]) == 0
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    assert main(["run", str(art), "--inputs", str(tmp_path / "in.npz"),
                 "--outputs", str(tmp_path / "out.npz")]) == 0
    from tinyc.testing.reference import reference_outputs

    (want,), _ = reference_outputs(model, {"x": x}, ["y"])
    got = np.load(tmp_path / "out.npz")["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_run_check_against_reference(tmp_path, capsys):
    model = _small_cnn(tmp_path / "m.onnx")
    assert main(["run", model, "--check"]) == 0
    assert "check: PASS" in capsys.readouterr().out


def test_errors_exit_nonzero_without_traceback(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    r = subprocess.run([sys.executable, "-m", "tinyc.cli", "run", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "tinyc: error:" in r.stderr and "Traceback" not in r.stderr


def test_run_profile_shows_where_time_went(tmp_path, capsys):
    model = _small_cnn(tmp_path / "m.onnx")
    assert main(["run", model, "--profile"]) == 0
    out = capsys.readouterr().out
    assert "where the time went" in out and "tinyc.Conv" in out


def test_profile_shares_add_up():
    import tinyc
    from tinyc.compiler import CompileOptions

    sess = tinyc.InferenceSession(_small_cnn_model(), options=CompileOptions(profile=True))
    x = np.zeros((1, 3, 16, 16), np.float32)
    sess.run(None, {"x": x})
    rows = sess.profile()
    assert rows and abs(sum(r[2] for r in rows) - 1.0) < 1e-6


def _small_cnn_model():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return onnx.load(_small_cnn(f"{d}/m.onnx"))


def test_a_reader_that_leaves_early_is_not_an_error():
    """`tinyc targets | head -1`: the pipe closes before tinyc writes; no traceback."""
    p = subprocess.Popen([sys.executable, "-m", "tinyc.cli", "targets"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # before the interpreter has even started: its first write fails
    assert p.wait(timeout=120) == 0
    assert p.stderr.read() == b""
