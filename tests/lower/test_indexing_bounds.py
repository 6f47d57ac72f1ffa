"""Indices out of range and index shapes that do not fit (issue 15, item 1).

Each case compiles and runs in a child process: before the checks these cases
read or wrote outside their buffers, and a regression must show as a failed
test, not as a dead pytest worker. A run-time index out of range is an
InputError naming the node, the input and the value; a shape no index could
fit is a ModelError at compile time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper

_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tinyc
    from tinyc.compiler import compile_model
    folder = sys.argv[1]
    feeds = dict(np.load(folder + "/feeds.npz"))
    try:
        model = compile_model(open(folder + "/model.onnx", "rb").read()).load(folder + "/art")
        out = model.run(None, feeds)[0]
        result = {"outcome": "ok", "output": out.tolist()}
    except tinyc.TinycError as e:
        result = {"outcome": type(e).__name__, "message": str(e),
                  "value_error": isinstance(e, ValueError)}
    print(json.dumps(result))
""")


def _model(op: str, inputs: list[tuple[str, int, list[int]]], out_type: int = TensorProto.FLOAT,
           opset: int = 18, **attrs):
    node = helper.make_node(op, [n for n, _, _ in inputs], ["y"], name="the_node", **attrs)
    vis = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    out = helper.make_tensor_value_info("y", out_type, None)
    graph = helper.make_graph([node], "bounds", vis, [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def run_in_child(tmp_path, model, feeds: dict[str, np.ndarray]) -> dict:
    """Compile and run in a fresh interpreter; its result, or a failed test if it died."""
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    np.savez(tmp_path / "feeds.npz", **feeds)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"the child died with status {r.returncode}:\n{r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def _x(*shape: int) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


F, I64 = TensorProto.FLOAT, TensorProto.INT64

# (id, model, feeds, the bad value, its flat position) for a run-time index out of range
RUNTIME_CASES = [
    ("gather_high", _model("Gather", [("x", F, [5, 3]), ("ids", I64, [4])], axis=0),
     {"x": _x(5, 3), "ids": np.array([0, -5, 5, 1])}, 5, 2),
    ("gather_low_axis1", _model("Gather", [("x", F, [2, 3]), ("ids", I64, [2, 2])], axis=1),
     {"x": _x(2, 3), "ids": np.array([[2, -3], [-4, 0]])}, -4, 2),
    ("gather_int32", _model("Gather", [("x", F, [4]), ("ids", TensorProto.INT32, [3])]),
     {"x": _x(4), "ids": np.array([1, 2, 2**31 - 1], np.int32)}, 2**31 - 1, 2),
    ("gather_elements", _model("GatherElements", [("x", F, [3, 4]), ("ids", I64, [2, 4])],
                               axis=0),
     {"x": _x(3, 4), "ids": np.array([[0, 1, 2, -3], [0, 3, 0, 0]])}, 3, 5),
    ("gather_nd", _model("GatherND", [("x", F, [3, 4, 2]), ("ids", I64, [2, 2])]),
     {"x": _x(3, 4, 2), "ids": np.array([[2, -4], [1, 4]])}, 4, 3),
    ("gather_nd_batch", _model("GatherND", [("x", F, [2, 3, 2]), ("ids", I64, [2, 1])],
                               batch_dims=1),
     {"x": _x(2, 3, 2), "ids": np.array([[1], [-4]])}, -4, 1),
    ("scatter_elements", _model("ScatterElements", [("x", F, [3, 3]), ("ids", I64, [1, 3]),
                                                    ("u", F, [1, 3])], axis=1),
     {"x": _x(3, 3), "ids": np.array([[0, 1, 1000000]]), "u": _x(1, 3)}, 1000000, 2),
    ("scatter_nd", _model("ScatterND", [("x", F, [4, 3]), ("ids", I64, [2, 1]),
                                        ("u", F, [2, 3])]),
     {"x": _x(4, 3), "ids": np.array([[3], [-5]]), "u": _x(2, 3)}, -5, 1),
    ("tensor_scatter_linear",
     _model("TensorScatter", [("c", F, [2, 5, 2]), ("u", F, [2, 2, 2]), ("w", I64, [2])],
            opset=24, axis=1),
     {"c": _x(2, 5, 2), "u": _x(2, 2, 2), "w": np.array([3, 4])}, 4, 1),
]


@pytest.mark.parametrize("case", RUNTIME_CASES, ids=[c[0] for c in RUNTIME_CASES])
def test_index_out_of_range_is_an_input_error(tmp_path, case):
    _, model, feeds, value, position = case
    r = run_in_child(tmp_path, model, feeds)
    assert r["outcome"] == "InputError", r
    assert r["value_error"]
    op = model.graph.node[0].op_type
    bad_input = model.graph.node[0].input[1 if op != "TensorScatter" else 2]
    assert f"{op} node 'the_node': input '{bad_input}'" in r["message"]
    assert f"index {value} (at flat position {position})" in r["message"]


def test_in_range_negative_indices_keep_their_meaning(tmp_path):
    x = _x(5, 3)
    ids = np.array([-5, -1, 0, 4, -3])
    r = run_in_child(tmp_path, _model("Gather", [("x", F, [5, 3]), ("ids", I64, [5])]),
                     {"x": x, "ids": ids})
    assert r["outcome"] == "ok", r
    np.testing.assert_array_equal(np.array(r["output"], np.float32), x[ids])


def test_tensor_scatter_accepts_the_last_linear_position(tmp_path):
    c, u = _x(1, 4, 2), -_x(1, 2, 2) - 1
    r = run_in_child(tmp_path, _model("TensorScatter", [("c", F, [1, 4, 2]),
                                                       ("u", F, [1, 2, 2]), ("w", I64, [1])],
                                      opset=24, axis=1),
                     {"c": c, "u": u, "w": np.array([2])})
    assert r["outcome"] == "ok", r
    want = c.copy()
    want[0, 2:4] = u[0]
    np.testing.assert_array_equal(np.array(r["output"], np.float32), want)


# (id, model, feeds, words the ModelError must contain) for shapes no index can fit
COMPILE_CASES = [
    ("scatter_elements_wider",
     _model("ScatterElements", [("x", F, [2, 2]), ("ids", I64, [2, 5]), ("u", F, [2, 5])],
            axis=0),
     {"x": _x(2, 2), "ids": np.zeros((2, 5), np.int64), "u": _x(2, 5)}, "dim 1 is wider"),
    ("gather_elements_wider",
     _model("GatherElements", [("x", F, [3, 2]), ("ids", I64, [3, 6])], axis=0),
     {"x": _x(3, 2), "ids": np.zeros((3, 6), np.int64)}, "dim 1 is wider"),
    ("scatter_nd_empty_axis",
     _model("ScatterND", [("x", F, [0, 3]), ("ids", I64, [2, 1]), ("u", F, [2, 3])]),
     {"x": _x(0, 3), "ids": np.zeros((2, 1), np.int64), "u": _x(2, 3)}, "empty dimension"),
    ("gather_empty_axis", _model("Gather", [("x", F, [0, 3]), ("ids", I64, [2])], axis=0),
     {"x": _x(0, 3), "ids": np.zeros(2, np.int64)}, "empty dimension"),
    ("gather_nd_batch_mismatch",
     _model("GatherND", [("x", F, [2, 3]), ("ids", I64, [5, 1])], batch_dims=1),
     {"x": _x(2, 3), "ids": np.zeros((5, 1), np.int64)}, "batch dims"),
    ("tensor_scatter_circular_empty",
     _model("TensorScatter", [("c", F, [1, 0, 2]), ("u", F, [1, 1, 2]), ("w", I64, [1])],
            opset=24, axis=1, mode="circular"),
     {"c": _x(1, 0, 2), "u": _x(1, 1, 2), "w": np.zeros(1, np.int64)}, "circular cache of 0"),
]


@pytest.mark.parametrize("case", COMPILE_CASES, ids=[c[0] for c in COMPILE_CASES])
def test_index_shapes_that_cannot_fit_are_model_errors(tmp_path, case):
    _, model, feeds, words = case
    r = run_in_child(tmp_path, model, feeds)
    assert r["outcome"] == "ModelError", r
    assert "the_node" in r["message"] and words in r["message"], r["message"]


def test_constant_indices_are_checked_at_compile_time(tmp_path):
    model = _model("Gather", [("x", F, [4, 2])])
    model.graph.node[0].input.append("ids")
    model.graph.initializer.append(helper.make_tensor("ids", I64, [2], [1, 7]))
    r = run_in_child(tmp_path, model, {"x": _x(4, 2)})
    assert r["outcome"] == "ModelError", r
    assert "index 7" in r["message"] and "'ids'" in r["message"], r["message"]
