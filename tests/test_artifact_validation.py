"""Artifacts are validated, never trusted (issue 15, item 4).

Each damaged artifact is loaded and run in a child process: before the checks
several of these crashed the process (SIGSEGV, SIGABRT, SIGBUS) or wrote past
buffers, and a regression must fail the test, not kill the pytest worker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests_support import rewrite_meta

import tinyc

_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import tinyc.runtime
    try:
        m = tinyc.runtime.load(sys.argv[1], verify=sys.argv[2] == "verify")
        m.run(None, {"x": np.ones((2, 8), np.float32)})
        print("ok")
    except tinyc.TinycError as e:
        print(type(e).__name__ + ": " + str(e).replace(chr(10), " "))
""")


def _model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    ys = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 8]) for n in ("y", "z")]
    w = numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")
    nodes = [helper.make_node("Relu", ["x"], ["y"]),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Softmax", ["h"], ["s"]),
             helper.make_node("MatMul", ["s", "w"], ["z"])]
    g = helper.make_graph(nodes, "two", [x], ys, [w])  # s lives in the arena
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return tinyc.compile(_model(), target="x86").save(tmp_path_factory.mktemp("art") / "a")


def _load_in_child(folder, verify: bool = False) -> str:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(folder), "verify" if verify else ""],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"the child died with status {r.returncode}:\n{r.stderr[-2000:]}"
    return r.stdout.strip().splitlines()[-1]


def _edited(saved, tmp_path, edit, keep_checksum: bool) -> str:
    d = tmp_path / "edited"
    shutil.copytree(saved, d)
    meta = json.loads((d / "model.json").read_text())
    edit(meta)
    if keep_checksum:  # as if the tool that edited it knew to update model.json.sha256
        rewrite_meta(d, meta)
    else:
        (d / "model.json").write_text(json.dumps(meta))
    return d


EDITS = {
    "smaller arena": (lambda m: m.update(arena_bytes=64), "arena_bytes 64 is smaller"),
    "dropped output": (lambda m: m["outputs"].pop(), "1 outputs listed"),
    "shrunken output": (lambda m: m["outputs"][0].update(shape=[1, 8]), "compiled code's is"),
    "shrunken input": (lambda m: m["inputs"][0].update(shape=[1, 1]), "float32\\[2, 8\\]"),
    "transposed input": (lambda m: m["inputs"][0].update(shape=[8, 2]), "float32\\[2, 8\\]"),
    "retyped output": (lambda m: m["outputs"][0].update(dtype="int32"), "is int32"),
    "entry abort": (lambda m: m.update(entry="abort"), "'entry' is 'abort'"),
    "object dtype": (lambda m: m["outputs"][0].update(dtype="object"), "'outputs\\[0\\].dtype'"),
    "negative arena": (lambda m: m.update(arena_bytes=-1), "whole number"),
    "no plan": (lambda m: m.pop("plan"), "'plan' is missing"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_an_edited_model_json_is_refused(saved, tmp_path, name):
    edit, message = EDITS[name]
    # with its checksum updated, the plan's record still catches it
    got = _load_in_child(_edited(saved, tmp_path, edit, keep_checksum=True))
    assert got.startswith("ArtifactError") and __import__("re").search(message, got), got


def test_model_json_is_checked_against_its_checksum(saved, tmp_path):
    d = _edited(saved, tmp_path, lambda m: m.update(tinyc_version="0.0.0"), keep_checksum=False)
    assert "does not match its checksum in model.json.sha256" in _load_in_child(d)
    (d / "model.json.sha256").unlink()
    assert _load_in_child(d) == "ok"  # hand-made artifacts load without one...
    assert "model.json.sha256 is missing" in _load_in_child(d, verify=True)  # ...not the cache


@pytest.mark.parametrize("cut", [0, 3, 64, 1000, -1])
def test_a_truncated_library_is_an_artifact_error(saved, tmp_path, cut):
    d = tmp_path / "cut"
    shutil.copytree(saved, d)
    data = (d / "model.so").read_bytes()
    (d / "model.so").write_bytes(data[:cut] if cut >= 0 else data[: len(data) // 2])
    assert "model.so does not match its checksum" in _load_in_child(d)
    meta = json.loads((d / "model.json").read_text())  # no checksum to go by: the ELF checks
    meta["checksums"]["model.so"] = __import__("hashlib").sha256(
        (d / "model.so").read_bytes()).hexdigest()
    rewrite_meta(d, meta)
    got = _load_in_child(d)
    assert got.startswith("ArtifactError") and ("ELF" in got or "truncated" in got), got


@pytest.mark.parametrize("damage", ["garbage", "empty", "not an object", "missing"])
def test_an_unreadable_model_json_is_an_artifact_error(saved, tmp_path, damage):
    d = tmp_path / "bad"
    shutil.copytree(saved, d)
    (d / "model.json.sha256").unlink()
    content = {"garbage": b"\xff{oops", "empty": b"", "not an object": b"[1, 2]"}.get(damage)
    if content is None:
        (d / "model.json").unlink()
    else:
        (d / "model.json").write_bytes(content)
    with pytest.raises(tinyc.ArtifactError, match="model.json"):
        tinyc.runtime.load(d)


def test_the_cache_rebuilds_an_edited_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    tinyc.InferenceSession(_model()).run(None, {"x": x})
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if (p / "model.json").exists()]
    meta = json.loads((entry / "model.json").read_text())
    meta["outputs"].pop()
    (entry / "model.json").write_text(json.dumps(meta))  # as a stray edit would
    sess = tinyc.InferenceSession(_model())
    assert sess.compile_count == 1  # refused and rebuilt
    y, _ = sess.run(None, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert len(json.loads((entry / "model.json").read_text())["outputs"]) == 2


def test_every_dtype_tinyc_compiles_is_one_the_schema_accepts():
    """model.json lists each tensor's numpy dtype name; the loader's schema must
    know every one tinyc's IR can give (int2 and float4 were missing once)."""
    from tinyc.ir import DType
    from tinyc.runtime.schema import DTYPES

    names = set()
    for d in DType:
        try:
            names.add(d.numpy.name)
        except Exception:  # a type without a numpy counterpart never reaches model.json
            continue
    assert names <= set(DTYPES), sorted(names - set(DTYPES))
