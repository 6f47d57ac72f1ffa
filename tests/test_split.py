"""Split deployment end to end: hand-built int8 models compiled for x86,accel_sim,
run (host regions as native code, accelerator regions on the simulator) and
compared with onnxruntime; the explain command and its files."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.cli import main
from tinyc.compiler import CompileOptions, partition_model
from tinyc.partition import NOT_WORTH_IT
from tinyc.target import resolve_devices

I8 = TensorProto.INT8


class QNet:
    """int8 QLinearConv / QLinearMatMul layers; Casts bring values to and from float."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def conv(self, name: str, x: str, cin: int, cout: int, k: int = 3, relu: bool = False) -> str:
        w = self.rng.integers(-127, 128, (cout, cin, k, k)).astype(np.int8)
        args = [x, self.const(f"{name}.xs", np.float32(0.05)),
                self.const(f"{name}.xz", np.int8(2)), self.const(f"{name}.w", w),
                self.const(f"{name}.ws", np.full(cout, 0.01, np.float32)),
                self.const(f"{name}.wz", np.zeros(cout, np.int8)),
                self.const(f"{name}.ys", np.float32(0.05 * cin)),
                self.const(f"{name}.yz", np.int8(-3)),
                self.const(f"{name}.b", self.rng.integers(-900, 900, cout).astype(np.int32))]
        out = f"{name}.out" if relu else name
        self.nodes.append(helper.make_node("QLinearConv", args, [out], name=name,
                                           pads=[k // 2] * 4))
        if relu:
            self.nodes.append(helper.make_node("Relu", [out], [name], name=f"{name}.relu"))
        return name

    def op(self, op: str, name: str, *inputs: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return name

    def model(self, inputs: list, outputs: list) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "qnet", inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
        m.ir_version = 8
        return m


def _diamond() -> onnx.ModelProto:
    """a feeds a host-only branch (Cast, Cast) into c, and d directly: merging a, c
    and d into one accelerator region would wait for the branch that waits for it."""
    n = QNet()
    xq = n.op("Cast", "xq", "x", to=I8)
    a = n.conv("a", xq, 8, 16, relu=True)
    back = n.op("Cast", "back", n.op("Cast", "as_float", a, to=TensorProto.FLOAT), to=I8)
    n.conv("c", back, 16, 16)
    d = n.conv("d", a, 16, 8, k=1)
    n.op("Softmax", "y", n.op("Cast", "yf", d, to=TensorProto.FLOAT), axis=1)
    info = helper.make_tensor_value_info
    return n.model([info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
                   [info("y", TensorProto.FLOAT, None), info("c", I8, None)])


@pytest.fixture(scope="module")
def diamond_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("split") / "diamond.onnx"
    onnx.save(_diamond(), path)
    return str(path)


def _feeds(seed: int = 0) -> dict:
    x = np.random.default_rng(seed).integers(-30, 30, (1, 8, 12, 12)).astype(np.float32)
    return {"x": x}


def test_split_run_matches_onnxruntime_bit_for_bit_on_int8(diamond_path, ort_run):
    sess = tinyc.InferenceSession(diamond_path, target="x86,accel_sim")
    y, c = sess.run(None, _feeds())
    y_ref, c_ref = ort_run(onnx.load(diamond_path), _feeds())
    np.testing.assert_array_equal(c, c_ref)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)


def test_split_run_equals_the_all_cpu_run_bit_for_bit(diamond_path):
    split = tinyc.InferenceSession(diamond_path, target="x86,accel_sim").run(None, _feeds(2))
    host = tinyc.InferenceSession(diamond_path, target="x86").run(None, _feeds(2))
    for a, b in zip(split, host, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_saved_split_artifact_loads_and_runs_without_the_compiler(diamond_path, tmp_path):
    art = tinyc.compile(diamond_path, target="x86,accel_sim")
    art.save(tmp_path / "art")
    model = tinyc.runtime.load(tmp_path / "art")
    want = tinyc.InferenceSession(diamond_path, target="x86").run(None, _feeds(3))
    for a, b in zip(model.run(None, _feeds(3)), want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "art" / "devices" / "accel_sim").iterdir()) == [
        "region_1.json", "region_1.npz", "region_3.json", "region_3.npz"]


@pytest.mark.parametrize("damage", [None, "device_program", "library"])
def test_split_models_are_kept_in_the_disk_cache(diamond_path, tmp_path, monkeypatch, damage):
    """A second session loads the stored split artifact instead of compiling;
    an entry whose files fail their checksums is rebuilt."""
    import tinyc.session as session_module

    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    want = tinyc.InferenceSession(diamond_path, target="x86,accel_sim").run(None, _feeds(4))
    (entry,) = list((tmp_path / "cache").iterdir())
    if damage == "device_program":
        (entry / "devices" / "accel_sim" / "region_1.npz").write_bytes(b"PK\0garbled")
    elif damage == "library":
        (entry / "model.so").write_bytes(b"\0" * 64)
    compiles = []
    real = session_module.compile_model
    monkeypatch.setattr(session_module, "compile_model",
                        lambda *a, **k: compiles.append(1) or real(*a, **k))
    got = tinyc.InferenceSession(diamond_path, target="x86,accel_sim").run(None, _feeds(4))
    assert compiles == ([] if damage is None else [1])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_diamond_splits_into_regions_without_a_cycle(diamond_path):
    _, p = partition_model(onnx.load(diamond_path), resolve_devices("x86,accel_sim"),
                           CompileOptions())
    where = {name: (pl.device, pl.region) for name, pl in p.placements.items()}
    assert where["a"][0] == where["c"][0] == where["d"][0] == "accel_sim"
    assert where["a"][1] == where["d"][1] != where["c"][1]
    assert where["a.relu"] == where["a"]  # the fused post-op rides along


def test_the_small_spec_tiles_the_same_model_to_the_same_bits(diamond_path):
    big = tinyc.InferenceSession(diamond_path, target="x86,accel_sim").run(None, _feeds(1))
    # the small engine barely beats the host on layers this size: pin them to it
    pins = CompileOptions(pin=dict.fromkeys("acd", "accel_sim_small"))
    small_sess = tinyc.InferenceSession(diamond_path, "x86,accel_sim_small", pins)
    small = small_sess.run(None, _feeds(1))
    assert {r["device"] for r in small_sess._last.regions} == {"x86", "accel_sim_small"}
    for a, b in zip(big, small, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_tiny_product_stays_on_the_host():
    n = QNet()
    xq = n.op("Cast", "xq", "x", to=I8)
    mm = n.op("QLinearMatMul", "mm", xq, n.const("as", np.float32(0.1)), n.const("az", np.int8(0)),
              n.const("b", np.ones((4, 4), np.int8)), n.const("bs", np.float32(0.1)),
              n.const("bz", np.int8(0)), n.const("ys", np.float32(0.2)), n.const("yz", np.int8(0)))
    y = n.op("Cast", "y", mm, to=TensorProto.FLOAT)
    info = helper.make_tensor_value_info
    m = n.model([info("x", TensorProto.FLOAT, [1, 4])], [info(y, TensorProto.FLOAT, None)])
    _, p = partition_model(m, resolve_devices("x86,accel_sim"), CompileOptions())
    assert p.placements["mm"].device == "x86"
    assert p.placements["mm"].category == NOT_WORTH_IT


def test_pins_keep_a_layer_on_the_host(diamond_path):
    opts = CompileOptions(avoid={"accel_sim": ["d"]})
    _, p = partition_model(onnx.load(diamond_path), resolve_devices("x86,accel_sim"), opts)
    assert p.placements["d"].device == "x86"
    assert "kept off accel_sim" in p.placements["d"].why


def test_the_timeline_has_regions_transfers_and_device_time(diamond_path):
    sess = tinyc.InferenceSession(diamond_path, target="x86,accel_sim")
    sess.run(None, _feeds())
    events = [e for e in sess.trace()["traceEvents"] if e["ph"] == "X"]
    kinds = {(e["cat"], e["pid"]) for e in events}
    assert ("region", 0) in kinds and ("region", 1) in kinds and ("transfer", 1) in kinds
    device = [e for e in events if e["cat"] == "region" and e["pid"] == 1]
    assert all(e["args"]["cycles"] > 0 and 0 < e["args"]["utilization"] <= 1 for e in device)
    starts = [e["ts"] for e in events]
    assert starts == sorted(starts)


def test_explain_prints_reasons_and_writes_json_dot_and_trace(diamond_path, tmp_path, capsys):
    # the pictures (--svg/--png) need Graphviz: tests/partition/test_drawing.py
    files = {k: str(tmp_path / f"out.{k}") for k in ("json", "dot", "trace")}
    assert main(["explain", diamond_path, "--target", "x86,accel_sim", "--json", files["json"],
                 "--dot", files["dot"], "--trace", files["trace"]]) == 0
    out = capsys.readouterr().out
    assert "CPU fallbacks: 5 nodes" in out and "unsupported op" in out
    placement = json.load(open(files["json"]))
    assert {n["node"]: n["device"] for n in placement["nodes"]}["a"] == "accel_sim"
    dot = open(files["dot"]).read()
    assert dot.count("subgraph cluster_r") >= 3 and 'region 1: accel_sim"' in dot
    trace = json.load(open(files["trace"]))
    assert any(e.get("cat") == "transfer" for e in trace["traceEvents"])
