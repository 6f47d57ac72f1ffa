"""Symbolic shape inference of ops whose output sizes depend on data: each
such size is a fresh data-dependent symbol with its bound, and the nodes
after them are shaped from it."""

from __future__ import annotations

import numpy as np

from tinyc.ir import DType
from tinyc.ir.poly import poly_text
from tinyc.ir.symbolic import SymDim, Tracer, tracing
from tinyc.passes.data_dependent_shapes import data_dependent_nodes
from tinyc.passes.symbolic_shapes import infer_symbolic

from .graph_builder import GraphBuilder

I64 = DType.int64


def _infer(g, hints):
    tracer = Tracer(hints=dict(hints))
    with tracing(tracer):
        out = infer_symbolic(g, {s: SymDim.symbol(s, h) for s, h in hints.items()})
    shapes = {v: [str(d) for d in t.shape] for v, t in out.types.items()}
    return out, shapes, {u: poly_text(b) for u, b in tracer.unbacked.items()}


def test_each_data_dependent_size_is_a_symbol_bounded_by_the_inputs_sizes():
    b = GraphBuilder(opset=17)
    x = b.input("x", ("N", 4))
    k = b.input("k", (1,), I64)
    nz = b.op("NonZero", x, shape=(2, "?0"), dtype=I64, out="nz")
    idx = b.op("Transpose", nz, shape=("?0", 2), dtype=I64, perm=[1, 0], out="idx")
    vals = b.op("GatherND", x, idx, shape=("?0",), out="vals")
    top = b.op_multi("TopK", (x, k), [("v", ("N", "?1"), None), ("i", ("N", "?1"), I64)],
                     axis=1)
    g = b.build(vals, *top)
    assert data_dependent_nodes(g) == [g.nodes[0].name, g.nodes[3].name]
    _, shapes, bounds = _infer(g, {"N": 3})
    assert bounds == {"nonzero0": "4*N", "topk1": "4"}
    assert shapes["nz"] == ["2", "nonzero0"] and shapes["idx"] == ["nonzero0", "2"]
    assert shapes["vals"] == ["nonzero0"] and shapes["v"] == ["N", "topk1"]


def test_constant_deciders_leave_sizes_static():
    b = GraphBuilder(opset=17)
    x = b.input("x", (5, 3))
    y = b.op("Compress", x, b.const("c", [1, 0, 1, 1, 0], np.bool_), shape=(3, 3), axis=0)
    top = b.op_multi("TopK", (x, b.const("k", [2], np.int64)),
                     [("v", (5, 2), None), ("i", (5, 2), I64)], axis=1)
    g = b.build(y, *top)
    assert data_dependent_nodes(g) == []


def test_run_time_axes_give_each_output_dim_a_symbol():
    b = GraphBuilder(opset=18)
    x = b.input("x", (3, 0, 5))
    axes = b.input("axes", (1,), I64)
    kept = b.op("ReduceSum", x, axes, shape=("?0", "?1", "?2"), keepdims=1, out="kept")
    dropped = b.op("ReduceSum", x, axes, shape=("?3", "?4"), keepdims=0, out="dropped")
    _, shapes, bounds = _infer(b.build(kept, dropped), {})
    assert shapes["kept"] == ["reduced0", "reduced1", "reduced2"]
    # a kept dim is 1 or the input's: an empty one may become 1
    assert [bounds[f"reduced{k}"] for k in range(3)] == ["3", "1", "5"]
    assert [bounds[s] for s in shapes["dropped"]] == ["3", "5"]
