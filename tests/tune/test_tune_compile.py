"""A tuning record changes the generated code: compiling with a log that holds
a non-default configuration builds the kernel for that tile and those blocks,
says so in the report, and still computes the right numbers; the default
database in the cache folder is applied without being named."""

from __future__ import annotations

import numpy as np
import pytest
from tune_models import matmul_model

from tinyc.cli import main
from tinyc.compiler import CompileOptions, compile_model
from tinyc.frontend.onnx_import import import_model
from tinyc.schedule import TuningRecord
from tinyc.schedule.database import append_records
from tinyc.tune.tasks import extract_tasks


def _conv_model():
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(1).standard_normal((32, 8, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["X", "W"], ["Y"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 8, 20, 20])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 32, 20, 20])],
        [numpy_helper.from_array(w, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _other_config(task) -> dict:
    """A legal configuration differing from the defaults in every knob it can."""
    config = {}
    for knob in task.tunable.space.knobs:
        others = [v for v in knob.values if v != knob.default]
        config[knob.name] = others[0] if others else knob.default
    return config


def _log_with(tmp_path, task, config) -> str:
    log = tmp_path / "tuned.jsonl"
    append_records(log, [TuningRecord(task.tunable.workload, config, (1e-6,), 0.0)])
    return str(log)


def _node_report(art, name):
    return next(r for r in art.report if r["node"] == name)


@pytest.mark.parametrize("make, node, target, threads", [(matmul_model, "mm", "x86", 1),
                                                         (_conv_model, "conv", "x86", 2),
                                                         (matmul_model, "mm", "x86-avx2", 2)])
def test_a_tuned_config_changes_the_kernel(tmp_path, make, node, target, threads):
    model = make()
    (task,) = extract_tasks(model, target, CompileOptions(threads=threads,
                                                          default_tuning=False))
    assert ("split" in task.tunable.space.names) == (threads > 1)  # the thread split
    config = _other_config(task)
    plain = compile_model(model, target, CompileOptions(threads=threads, default_tuning=False))
    log = _log_with(tmp_path, task, config)
    tuned = compile_model(model, target, CompileOptions(threads=threads, tuning_log=log))
    before, after = _node_report(plain, node), _node_report(tuned, node)
    assert before["tuned"] is False and before["schedule"] == task.tunable.space.defaults()
    assert after["tuned"] is True and after["schedule"] == config
    mr, nv = config["tile"]
    lanes = int(before["kernels"][0].split("v")[1].split("_")[0])
    assert any(k.startswith(f"gemm_f32_{mr}x{nv}v{lanes}_") for k in after["kernels"])
    assert before["kernels"] != after["kernels"] and "tuned (" in after["note"]
    if threads > 1:
        assert any(f"_t{threads}_s{config['split']}" in k for k in after["kernels"])
    if config["prefetch"] != task.tunable.space.defaults()["prefetch"]:  # the K loop's
        assert any(k.endswith(f"_pf{config['prefetch']}") for k in after["kernels"])
    g = import_model(model)
    x = np.random.default_rng(0).standard_normal(g.types[g.inputs[0]].shape).astype(np.float32)
    (want,) = plain.load(tmp_path / "plain").run(None, {g.inputs[0]: x})
    (got,) = tuned.load(tmp_path / "tuned").run(None, {g.inputs[0]: x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_the_default_database_is_applied(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    model = matmul_model()
    (task,) = extract_tasks(model, "x86", CompileOptions(default_tuning=False))
    (tmp_path / "cache").mkdir()
    append_records(tmp_path / "cache" / "tuning.jsonl",
                   [TuningRecord(task.tunable.workload, _other_config(task), (1e-6,), 0.0)])
    assert _node_report(compile_model(model, "x86"), "mm")["tuned"] is True
    off = CompileOptions(default_tuning=False)
    assert _node_report(compile_model(model, "x86", off), "mm")["tuned"] is False


def test_cli_compile_reports_tuned_layers(tmp_path, capsys):
    model = matmul_model()
    (task,) = extract_tasks(model, "x86", CompileOptions(default_tuning=False))
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    log = _log_with(tmp_path, task, _other_config(task))
    assert main(["compile", str(path), "-o", str(tmp_path / "a"), "--tuning-log", log,
                 "--report"]) == 0
    out = capsys.readouterr().out
    assert "tuned layers: 1 of 1 tunable (mm)" in out and "tuned (tile=" in out
    assert main(["compile", str(path), "-o", str(tmp_path / "b"), "--tuning-log",
                 str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


def test_a_target_for_another_machine_is_not_tuned(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(matmul_model().SerializeToString())
    assert main(["tune", str(path), "--target", "aarch64", "--log",
                 str(tmp_path / "t.jsonl")]) == 1
    assert "builds for another machine" in capsys.readouterr().err
