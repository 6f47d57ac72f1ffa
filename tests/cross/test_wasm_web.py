"""The wasm artifact's web package (model.js, model.d.ts, package.json) runs
under node and matches onnxruntime: squeezenet, BERT-tiny (three int64
inputs), a model with several inputs and outputs of float32, int64 and bool,
and a model with symbolic dims run at other sizes per call
(test_wasm_chromium.py runs the first two in Chromium). node reads inputs from binary
files, writes outputs as binary files; the JS outputs must also be bit-equal to
the same module run from Python in wasmtime (same layout, same code)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tinyc
from tinyc.compiler import CompileOptions, compile_model
from tinyc.runtime.symbolic import ShapeGuardError
from tinyc.testing.compare import range_error

from .support import require
from .web_models import TARGET, check_outputs

# node reads feeds.json ({name: [dtype, file]}), runs `repeat` times, writes
# each output to out_<i>.bin and outputs.json (names, dtypes, files, ms per run)
RUN_MJS = """
import { readFileSync, writeFileSync } from "node:fs";
import { Model } from "./model.js";
const spec = JSON.parse(readFileSync("feeds.json", "utf8"));
const model = await Model.load();
const feeds = {};
for (const [name, [dtype, file]] of Object.entries(spec.feeds)) {
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  feeds[name] = new (Model.arrayFor(dtype))(buffer);
}
let out = model.run(feeds);  // first run: warm up
const start = performance.now();
for (let i = 0; i < spec.repeat; i++) out = model.run(feeds);
const ms = (performance.now() - start) / spec.repeat;
const written = model.outputs.map((t, i) => {
  const o = out[t.name];
  writeFileSync(`out_${i}.bin`, new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
  return [t.name, t.dtype, `out_${i}.bin`];
});
writeFileSync("outputs.json", JSON.stringify({ outputs: written, ms }));
"""


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):  # each test compiles: the web files come from this plugin
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")


@pytest.fixture
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed (the web package is tested under node)")
    return path


def mixed_model() -> onnx.ModelProto:
    """Three inputs, three outputs: float32 arithmetic, int64 arithmetic, a bool."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    info = helper.make_tensor_value_info
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("Mul", ["s", "a"], ["y"]),
             helper.make_node("Add", ["k", "k"], ["k2"]),
             helper.make_node("Mul", ["k2", "k"], ["z"]),
             helper.make_node("Greater", ["a", "b"], ["g"])]
    graph = helper.make_graph(
        nodes, "mixed",
        [info("a", f, [2, 3]), info("b", f, [2, 3]), info("k", i64, [5])],
        [info("y", f, [2, 3]), info("z", i64, [5]), info("g", TensorProto.BOOL, [2, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_in_node(node: str, folder: str, feeds: dict[str, np.ndarray], repeat: int = 1
                ) -> tuple[dict[str, np.ndarray], float]:
    spec = {"feeds": {}, "repeat": repeat}
    for k, (name, a) in enumerate(feeds.items()):
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tofile(
            os.path.join(folder, f"in_{k}.bin"))
        spec["feeds"][name] = [str(a.dtype), f"in_{k}.bin"]
    with open(os.path.join(folder, "feeds.json"), "w") as f:
        json.dump(spec, f)
    with open(os.path.join(folder, "run.mjs"), "w") as f:
        f.write(RUN_MJS)
    done = subprocess.run([node, "run.mjs"], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    with open(os.path.join(folder, "outputs.json")) as f:
        result = json.load(f)
    meta = {t["name"]: t for t in json.load(open(os.path.join(folder, "model.json")))["outputs"]}
    outs = {name: np.fromfile(os.path.join(folder, file), dtype).reshape(meta[name]["shape"])
            for name, dtype, file in result["outputs"]}
    return outs, result["ms"]


def check(model, feeds, tmp_path, node, ort_run, repeat=1) -> float:
    require(TARGET)
    folder = str(tmp_path / "artifact")
    in_wasmtime = tinyc.compile(model, target=TARGET).load(folder)  # saves, then loads
    got, ms = run_in_node(node, folder, feeds, repeat)
    names = [o.name for o in model.graph.output]
    assert list(got) == names
    for name, want, py in zip(names, ort_run(model, feeds, names), in_wasmtime.run(names, feeds),
                              strict=True):
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], py, err_msg=f"{name}: node vs wasmtime")
        if want.dtype.kind == "f":
            err = range_error(got[name], want)
            assert err <= 1e-5, f"{name}: error {err:.3e} of the output range"
        else:
            np.testing.assert_array_equal(got[name], want, err_msg=name)
    return ms


@pytest.mark.parametrize("name", ["squeezenet", "bert_tiny"])
def test_model_runs_in_node(name, web_models, node):
    web = web_models[name]
    got, ms = run_in_node(node, web.folder, web.feeds, repeat=3)
    check_outputs("node", got, web)
    print(f"{name} {TARGET} in node: {ms:.2f} ms per run")


def test_several_inputs_and_outputs_of_several_dtypes(tmp_path, node, ort_run):
    rng = np.random.default_rng(1)
    feeds = {"a": rng.standard_normal((2, 3)).astype(np.float32),
             "b": rng.standard_normal((2, 3)).astype(np.float32),
             "k": np.array([-3, 0, 7, 1 << 33, -(1 << 40)], np.int64)}  # beyond 32 bits
    check(mixed_model(), feeds, tmp_path, node, ort_run)


# Bad feeds, each caught in JS with its error class and message
ERRORS_MJS = """
import { Model } from "./model.js";
const model = await Model.load();
const ok = { a: new Float32Array(6), b: new Float32Array(6), k: new BigInt64Array(5) };
const cases = [{ ...ok, b: undefined }, { ...ok, a: new Float64Array(6) },
               { ...ok, k: new Int32Array(5) }, { ...ok, a: new Float32Array(5) },
               { ...ok, extra: new Float32Array(1) }, null];
for (const feeds of cases) {
  if (feeds && "b" in feeds && feeds.b === undefined) delete feeds.b;
  try { model.run(feeds); console.log("no error"); }
  catch (e) { console.log(`${e.constructor.name}: ${e.message}`); }
}
console.log(Object.keys(model.run(ok)).join(","));
"""


def node_script(node: str, folder: str, script: str) -> subprocess.CompletedProcess:
    with open(os.path.join(folder, "check.mjs"), "w") as f:
        f.write(script)
    return subprocess.run([node, "check.mjs"], cwd=folder, capture_output=True, text=True,
                          timeout=120)


def test_bad_feeds_raise_clear_errors_in_js(tmp_path, node):
    require(TARGET)
    folder = tinyc.compile(mixed_model(), target=TARGET).save(str(tmp_path / "artifact"))
    done = node_script(node, folder, ERRORS_MJS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Error: missing input 'b' (float32[2, 3])",
        "TypeError: input 'a' must be a Float32Array (float32[2, 3]), got Float64Array",
        "TypeError: input 'k' must be a BigInt64Array (int64[5]), got Int32Array",
        "RangeError: input 'a' has 5 elements; float32[2, 3] has 6",
        "Error: unknown input 'extra'; the model's inputs are a, b, k",
        "TypeError: run() takes an object mapping input names to TypedArrays",
        "y,z,g"]


def test_the_folder_is_an_npm_package_shipping_the_weights_once(tmp_path):
    require(TARGET)
    art = tinyc.compile(mixed_model(), target=TARGET)
    folder = art.save(str(tmp_path / "artifact"))
    with open(os.path.join(folder, "package.json")) as f:
        pkg = json.load(f)
    assert pkg["type"] == "module" and pkg["main"] == "model.js" and pkg["types"] == "model.d.ts"
    assert pkg["files"] == ["model.wasm", "model.js", "model.d.ts"]
    assert not os.path.exists(os.path.join(folder, "weights.bin"))  # model.wasm holds them
    assert art.meta["weights_in"] == "model.wasm" and "weights.bin" not in art.meta["checksums"]
    for name in pkg["files"] + ["index.html"]:
        assert name in art.meta["checksums"], name  # tinyc's loader checks them too
    with open(os.path.join(folder, "model.d.ts")) as f:
        types = f.read()
    assert '"k": BigInt64Array;' in types and '"g": Uint8Array;' in types


def test_the_loader_checks_the_module_that_holds_the_weights(tmp_path):
    require(TARGET)
    folder = tinyc.compile(mixed_model(), target=TARGET).save(str(tmp_path / "artifact"))
    tinyc.runtime.load(folder)  # no weights.bin, and none needed
    with open(os.path.join(folder, "model.json")) as f:
        meta = json.load(f)
    del meta["weights_in"]  # then a weights.bin is required again
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump(meta, f)
    os.remove(os.path.join(folder, "model.json.sha256"))
    with pytest.raises(tinyc.ArtifactError, match="no checksum for weights.bin"):
        tinyc.runtime.load(folder)
    module = os.path.join(folder, "model.wasm")
    with open(module, "r+b") as f:  # a damaged module: its checksum catches it
        f.seek(-1, os.SEEK_END)
        f.write(b"\xff")
    meta["weights_in"] = "model.wasm"
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump(meta, f)
    with pytest.raises(tinyc.ArtifactError, match="model.wasm does not match its checksum"):
        tinyc.runtime.load(folder)


def symbolic_model() -> onnx.ModelProto:
    """x float32[N, 4] -> y = x + x; k int64[M] -> z = concat(k, k), int64[2*M]."""
    info = helper.make_tensor_value_info
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"]),
         helper.make_node("Concat", ["k", "k"], ["z"], axis=0)], "sym",
        [info("x", f, ["N", 4]), info("k", i64, ["M"])],
        [info("y", f, ["N", 4]), info("z", i64, ["2*M"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# Two runs of other sizes, then bad feeds; prints JSON lines
SYMBOLIC_MJS = """
import { Model } from "./model.js";
const model = await Model.load();
const show = (o) => ({ y: [Array.from(o.y.data), o.y.dims],
                       z: [Array.from(o.z.data, String), o.z.dims] });
const feeds = (n, m) => ({ x: { data: Float32Array.from({ length: 4 * n }, (_, i) => i / 4 - 1),
                                dims: [n, 4] },
                           k: { data: BigInt64Array.from({ length: m }, (_, i) => BigInt(i) << 35n),
                                dims: [m] } });
console.log(JSON.stringify(show(model.run(feeds(3, 5)))));
console.log(JSON.stringify(show(model.run(feeds(1, 2)))));
const bad = [{ ...feeds(2, 2), x: new Float32Array(8) },
             { ...feeds(2, 2), x: { data: new Float32Array(8), dims: [2, 5] } },
             { ...feeds(2, 2), x: { data: new Float32Array(7), dims: [2, 4] } },
             feeds(0, 2), feeds(5, 2)];
for (const f of bad) {
  try { model.run(f); console.log("no error"); }
  catch (e) { console.log(`${e.constructor.name}: ${e.message}`); }
}
"""


def test_a_symbolic_model_runs_in_js_at_the_sizes_of_each_run(tmp_path, node, ort_run):
    require(TARGET)
    model = symbolic_model()
    art = compile_model(model, TARGET, CompileOptions(max_shapes={"N": 4}))
    folder = art.save(str(tmp_path / "artifact"))
    with pytest.raises(ShapeGuardError, match=r"N=5 \(at most 4"):  # wasmtime refuses it too
        tinyc.runtime.load(folder).run(None, {"x": np.ones((5, 4), np.float32),
                                              "k": np.ones(2, np.int64)})
    with open(os.path.join(folder, "model.d.ts")) as f:
        assert '"x": { data: Float32Array; dims: number[] };' in f.read()
    done = node_script(node, folder, SYMBOLIC_MJS)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for line, (n, m) in zip(lines, [(3, 5), (1, 2)], strict=False):
        x = (np.arange(4 * n, dtype=np.float32) / 4 - 1).reshape(n, 4)
        k = np.arange(m, dtype=np.int64) << 35
        want_y, want_z = ort_run(model, {"x": x, "k": k})
        got = json.loads(line)
        assert got["y"][1] == [n, 4] and got["z"][1] == [2 * m]
        np.testing.assert_array_equal(np.array(got["y"][0], np.float32).reshape(n, 4), want_y)
        np.testing.assert_array_equal(np.array(got["z"][0], np.int64), want_z)
    assert lines[2:] == [
        "TypeError: input 'x' has symbolic dims (float32[N, 4]): pass { data, dims }",
        "RangeError: input 'x' has dims [2, 5]; expected float32[N, 4]",
        "RangeError: input 'x' has 7 elements; dims [2, 4] make 8",
        "RangeError: symbolic dimensions out of range: N=0 (at least 1)",
        "RangeError: symbolic dimensions out of range: N=5 (at most 4, the max_shapes "
        "compiled for)"]
