"""One compile path: a single target is a deployment with one device, compiled
and run as one region; its artifact still runs with one entry call."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from test_split import _diamond  # tests/ is on sys.path (rootdir-relative imports)
from tests_support import rewrite_meta

import tinyc
from tinyc.compiler import CompileOptions, partition_model
from tinyc.runtime.native import NativeModel
from tinyc.runtime.regions import RegionModel
from tinyc.target import resolve_devices


def _mlp(batch: int | str = 4) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = onnx.numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 32])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Tanh", ["m"], ["y"], name="tanh")]
    g = helper.make_graph(nodes, "mlp", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _x() -> dict:
    return {"x": np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)}


def test_one_device_partitions_into_one_region_of_the_whole_graph():
    g, p = partition_model(_mlp(), resolve_devices("x86"), CompileOptions())
    (region,) = p.regions
    assert region.device == "x86" and region.kind == "cpu"
    assert region.nodes == tuple(n.name for n in g.nodes)
    assert region.inputs == tuple(g.inputs) and region.outputs == tuple(g.outputs)


def test_a_single_cpu_artifact_is_one_region_run_by_one_entry_call(tmp_path):
    art = tinyc.compile(_mlp(), target="x86")
    (region,) = art.meta["regions"]
    assert region["entry"] == art.meta["entry"] == "tinyc_run"
    assert region["weights_offset"] == 0 and art.meta["host"] == "x86"
    model = art.load(tmp_path / "art")
    assert type(model) is NativeModel  # the fast path: no region walk, no copies
    want = np.tanh(_x()["x"] @ onnx.numpy_helper.to_array(_mlp().graph.initializer[0]))
    np.testing.assert_allclose(model.run(None, _x())[0], want, rtol=1e-5, atol=1e-5)


def test_an_artifact_saved_before_regions_existed_still_loads(tmp_path):
    """model.json of format 1 without `regions` and `host`: one entry call."""
    folder = tinyc.compile(_mlp(), target="x86").save(tmp_path / "old")
    meta_path = tmp_path / "old" / "model.json"
    meta = json.loads(meta_path.read_text())
    del meta["regions"], meta["host"]
    rewrite_meta(tmp_path / "old", meta)  # as the tinyc of that format wrote it
    model = tinyc.runtime.load(folder)
    assert type(model) is NativeModel
    assert model.run(None, _x())[0].shape == (4, 32)


def test_a_split_artifact_loads_as_a_region_model(tmp_path):
    art = tinyc.compile(_diamond(), target="x86,accel_sim")
    assert {r["kind"] for r in art.meta["regions"]} == {"cpu", "accelerator"}
    assert art.meta["kind"] == "split" and art.partition is not None
    model = art.load(tmp_path / "art")
    assert isinstance(model, RegionModel)
    assert all(r["entry"].startswith("tinyc_run_region_")
               for r in model.regions if r["kind"] == "cpu")


def test_symbolic_split_deployment_is_a_clear_error():
    with pytest.raises(tinyc.TinycError, match="static shapes only.*input_shapes"):
        tinyc.compile(_mlp("n"), target="x86,accel_sim")


def test_a_symbolic_single_cpu_compile_keeps_its_symbols():
    art = tinyc.compile(_mlp("n"), target="x86",
                        options=CompileOptions(shape_hints={"n": 4}))
    assert art.meta["symbolic"]["symbols"] == ["n"] and len(art.meta["regions"]) == 1


def test_profiling_a_split_deployment_is_a_clear_error():
    with pytest.raises(tinyc.TinycError, match="profile=True"):
        tinyc.compile(_diamond(), target="x86,accel_sim", options=CompileOptions(profile=True))


def test_timings_name_every_phase_once():
    opts = CompileOptions()
    tinyc.compile(_mlp(), target="x86", options=opts)
    assert {"import", "passes", "partition", "lower", "codegen", "llvm", "link"} <= set(
        opts.timings)
