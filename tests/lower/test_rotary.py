"""ONNX RotaryEmbedding (opset 23) lowered to its one kernel, against
onnx.reference: 3-D and 4-D inputs, interleaved or not, partial rotary dims,
caches read at position_ids or given per token, odd head sizes; and position
ids outside the cache refused at run time."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from op_batch import Case, check_cases, reference_oracle
from test_indexing_bounds import _model, run_in_child

import tinyc
from tinyc.errors import ModelError
from tinyc.ir import Graph, Node, TensorType
from tinyc.lower.rotary import lower_rotary
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target

MAX_POS = 50


def _case(rng, dtype, rank, batch, seq, heads, head, rotary, interleaved, positions):
    x = rng.standard_normal((batch, seq, heads * head) if rank == 3
                            else (batch, heads, seq, head)).astype(dtype)
    half = (rotary or head) // 2
    angles = rng.uniform(-3, 3, (MAX_POS, half) if positions else (batch, seq, half))
    cos, sin = np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
    attrs = {"interleaved": int(interleaved)}
    if rotary:
        attrs["rotary_embedding_dim"] = rotary
    if rank == 3:
        attrs["num_heads"] = heads
    ins = [x, cos, sin]
    if positions:
        ins.append(rng.integers(0, MAX_POS, (batch, seq)).astype(np.int64))
    return Case("RotaryEmbedding", ins, attrs, opset=23)


# (rank, batch, seq, heads, head, rotary dims or 0 for all, interleaved, position_ids)
TABLE = [
    (3, 2, 5, 3, 24, 0, False, True),
    (3, 2, 5, 3, 24, 0, True, True),
    (4, 2, 3, 2, 40, 0, False, True),
    (4, 2, 3, 2, 40, 0, True, False),
    (3, 2, 4, 2, 80, 32, False, True),  # partial: 48 dims pass through
    (3, 2, 4, 2, 80, 32, True, False),
    (4, 2, 7, 3, 80, 48, True, True),
    (4, 1, 1, 4, 64, 0, False, True),  # one decode token
    (3, 2, 6, 1, 40, 20, False, False),  # a half of 10: a partial vector step
    (3, 1, 3, 5, 6, 2, True, True),  # one pair per head
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rotary_matches_onnx_reference(rng, dtype):
    cases = [_case(rng, dtype, *row) for row in TABLE]
    if dtype == np.float32:
        check_cases(cases, reference_oracle, rtol=1e-5, atol=1e-5)
    else:  # the reference rounds each product to float16; the kernel rounds once
        check_cases(cases, reference_oracle, rtol=1e-2, atol=4e-3)


def test_constant_positions_and_caches(rng):
    case = _case(rng, np.float32, 3, 2, 3, 2, 24, 0, False, True)
    check_cases([Case(case.op, case.inputs, case.attrs, consts=(1, 2, 3), opset=23)],
                reference_oracle, rtol=1e-5, atol=1e-5)


def _lower(shapes, attrs):
    names = ("x", "cos", "sin", "pos")[:len(shapes)]
    types = {n: TensorType.of(np.zeros(s, np.int64 if n == "pos" else np.float32))
             for n, s in zip(names, shapes, strict=True)}
    types["y"] = types["x"]
    node = Node("RotaryEmbedding", names, ("y",), attrs, name="rope")
    g = Graph("g", names, ("y",), (node,), types, {}, {"": 23})
    return lower_rotary(node, LowerContext(g, host_target()))


@pytest.mark.parametrize("shapes, attrs, why", [
    ([(1, 2, 16), (8, 8), (8, 8), (1, 2)], {}, "needs num_heads"),
    ([(1, 2, 16), (8, 5), (8, 5), (1, 2)], {"num_heads": 1}, "rotary dims"),
    ([(1, 2, 16), (8, 4), (8, 4), (1, 2)], {"num_heads": 1, "rotary_embedding_dim": 6},
     "rotary dims"),
    ([(1, 2, 2, 8), (2, 2, 4), (2, 2, 4)], {}, "expected [1, 2, R/2]"),
    ([(1, 2, 2, 8), (8, 4), (8, 4), (2, 1)], {}, "position_ids of shape"),
])
def test_shapes_that_do_not_fit_are_model_errors(shapes, attrs, why):
    with pytest.raises(ModelError, match="RotaryEmbedding node 'rope'.*" + why.replace("[", r"\[")):
        _lower(shapes, attrs)


@pytest.mark.parametrize("bad, at", [(MAX_POS, 3), (-1, 0)])
def test_positions_outside_the_cache_are_refused(tmp_path, bad, at):
    f = TensorProto.FLOAT
    model = _model("RotaryEmbedding", [("x", f, [2, 2, 2, 8]), ("cos", f, [MAX_POS, 4]),
                                       ("sin", f, [MAX_POS, 4]),
                                       ("pos", TensorProto.INT64, [2, 2])], opset=23)
    pos = np.array([0, 1, 2, 3], np.int64)
    pos[at] = bad
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 2, 2, 8)).astype(np.float32),
             "cos": np.ones((MAX_POS, 4), np.float32), "sin": np.zeros((MAX_POS, 4), np.float32),
             "pos": pos.reshape(2, 2)}
    r = run_in_child(tmp_path, model, feeds)
    assert r["outcome"] == "InputError", r
    assert "RotaryEmbedding node 'the_node': input 'pos'" in r["message"]
    assert f"index {bad} (at flat position {at})" in r["message"]
    assert f"[0, {MAX_POS - 1}]" in r["message"]


def test_same_bits_on_one_and_two_threads(tmp_path, rng):
    """Enough tokens to split (2 x 256 tokens of 8 heads of 64): the pool's
    chunks give the serial result."""
    case = _case(rng, np.float32, 4, 2, 256, 8, 64, 0, True, True)
    case = Case(case.op, case.inputs, case.attrs, consts=(1, 2), opset=23)
    model = case.onnx_model()
    model.ir_version = 10
    tinyc.compile(model, target="x86", options=tinyc.CompileOptions(threads=2)).save(tmp_path)
    loaded = tinyc.runtime.load(tmp_path)
    outs = []
    for threads in (1, 2):
        loaded.set_num_threads(threads)
        outs.append(loaded.run(None, case.feeds())[0])
    np.testing.assert_allclose(outs[0], reference_oracle(case), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(outs[1], outs[0])
