"""decompose_einsum alone: Before / Expected graphs for each kind of rewrite, the
GEMM-shaped Einsums it leaves, and the equations it refuses as ModelErrors."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.errors import ModelError
from tinyc.ir import DType, assert_structurally_equal
from tinyc.passes.decompose_einsum import decompose_einsum_pass

from .graph_builder import GraphBuilder, run_pass

I64 = DType.int64


def einsum_graph(equation: str, *shapes: tuple, out: tuple, dtype: DType = DType.float32,
                 opset: int = 13):
    b = GraphBuilder(opset=opset)
    xs = [b.input(f"x{k}", s, dtype) for k, s in enumerate(shapes)]
    return b.build(b.op("Einsum", *xs, shape=out, out="y", equation=equation))


def test_a_diagonal_is_a_reshape_and_a_strided_slice():
    after = run_pass(decompose_einsum_pass, einsum_graph("ii->i", (3, 3), out=(3,)))
    e = GraphBuilder()
    x = e.input("x0", (3, 3))
    flat = e.op("Reshape", x, e.const("s", [9], np.int64), shape=(9,))
    diag = e.op("Slice", flat, e.const("a", [0], np.int64), e.const("b", [9], np.int64),
                e.const("c", [0], np.int64), e.const("d", [4], np.int64), shape=(3,), out="y")
    assert_structurally_equal(after, e.build(diag))


def test_a_batch_diagonal_moves_its_axes_last_first():
    after = run_pass(decompose_einsum_pass, einsum_graph("iib->bi", (3, 3, 2), out=(2, 3)))
    ops = [n.op for n in after.nodes]
    assert ops == ["Transpose", "Reshape", "Slice"]  # [b, i*i], then every 4th: [b, i]
    assert after.nodes[0].attrs["perm"] == [2, 0, 1]


def test_an_innermost_batch_index_multiplies_then_sums():
    after = run_pass(decompose_einsum_pass, einsum_graph("bi,bi->b", (2, 5), (2, 5), out=(2,)))
    e = GraphBuilder()
    x0, x1 = e.input("x0", (2, 5)), e.input("x1", (2, 5))
    prod = e.op("Mul", x0, x1, shape=(2, 5))
    y = e.op("ReduceSum", prod, e.const("axes", [1], np.int64), shape=(2,), out="y", keepdims=0)
    assert_structurally_equal(after, e.build(y))


def test_before_opset_13_the_axes_are_an_attribute():
    after = run_pass(decompose_einsum_pass, einsum_graph("ij->i", (2, 5), out=(2,), opset=12))
    (node,) = after.nodes
    assert (node.op, node.inputs, node.attrs) == ("ReduceSum", ("x0",), {"keepdims": 0,
                                                                         "axes": [1]})


def test_three_float32_operands_are_two_gemm_einsums():
    before = einsum_graph("ij,jk,kl->il", (2, 3), (3, 4), (4, 5), out=(2, 5))
    after = run_pass(decompose_einsum_pass, before)
    e = GraphBuilder()
    x0, x1, x2 = e.input("x0", (2, 3)), e.input("x1", (3, 4)), e.input("x2", (4, 5))
    ik = e.op("Einsum", x0, x1, shape=(2, 4), equation="ij,jk->ik")
    y = e.op("Einsum", ik, x2, shape=(2, 5), out="y", equation="ik,kl->il")
    assert_structurally_equal(after, e.build(y))


def test_a_pair_the_gemm_cannot_read_is_transposed_into_its_layout():
    # the summed letters j, k run in opposite orders in the two operands
    before = einsum_graph("ijk,kjl,lm->im", (2, 3, 4), (4, 3, 5), (5, 6), out=(2, 6))
    after = run_pass(decompose_einsum_pass, before)
    assert [n.op for n in after.nodes] == ["Transpose", "Einsum", "Einsum"]
    assert after.nodes[1].attrs["equation"] == "ijk,jkl->il"


def test_int64_pairs_stay_einsums_for_the_contraction_kernel():
    before = einsum_graph("ij,jk->ik", (2, 3), (3, 4), out=(2, 4), dtype=I64)
    assert_structurally_equal(run_pass(decompose_einsum_pass, before), before)
    chain = einsum_graph("ij,jk,kl->il", (2, 3), (3, 4), (4, 5), out=(2, 5), dtype=I64)
    after = run_pass(decompose_einsum_pass, chain)
    assert [n.op for n in after.nodes] == ["Einsum", "Einsum"]
    assert all(after.types[n.outputs[0]].dtype == I64 for n in after.nodes)


@pytest.mark.parametrize("equation, shapes, out", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], (2, 3, 5)),
    ("ij->ji", [(2, 3)], (3, 2)),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)], (1, 2, 3, 5)),
])
def test_what_the_gemm_lowering_takes_stays(equation, shapes, out):
    before = einsum_graph(equation, *shapes, out=out)
    assert_structurally_equal(run_pass(decompose_einsum_pass, before), before)


def test_a_symbolic_diagonal_stays_for_the_lowering_to_refuse():
    before = einsum_graph("bii->bi", ("n", 3, 3), out=("n", 3))
    assert [n.op for n in run_pass(decompose_einsum_pass, before).nodes] == \
        ["Reshape", "Slice"]  # a named batch size is copied by Reshape's 0
    before = einsum_graph("ii->i", ("n", "n"), out=("n",))
    assert_structurally_equal(run_pass(decompose_einsum_pass, before), before)


@pytest.mark.parametrize("equation, shapes, message", [
    ("ii->i", [(2, 3)], "repeated in operand 0 with different sizes"),
    ("...ij,...jk->...ik", [(2, 3, 4), (5, 4, 2)], "has sizes \\[2, 5\\]"),
    ("ij->k", [(2, 3)], "output index 'k' names no input axis"),
])
def test_inconsistent_equations_are_model_errors(equation, shapes, message):
    with pytest.raises(ModelError, match=message):
        decompose_einsum_pass(einsum_graph(equation, *shapes, out=(2,)))


def test_float16_computes_in_float32_between_two_casts():
    f16 = DType.float16
    before = einsum_graph("ij,jk->ik", (2, 3), (3, 4), out=(2, 4), dtype=f16)
    after = run_pass(decompose_einsum_pass, before)
    e = GraphBuilder()
    x0, x1 = e.input("x0", (2, 3), f16), e.input("x1", (3, 4), f16)
    a = e.op("Cast", x0, shape=(2, 3), dtype=DType.float32, to=1)
    b = e.op("Cast", x1, shape=(3, 4), dtype=DType.float32, to=1)
    wide = e.op("Einsum", a, b, shape=(2, 4), equation="ij,jk->ik")
    y = e.op("Cast", wide, shape=(2, 4), dtype=f16, out="y", to=10)
    assert_structurally_equal(after, e.build(y))
    diagonal = einsum_graph("ii->i", (3, 3), out=(3,), dtype=f16)  # no arithmetic: no casts
    assert [n.op for n in run_pass(decompose_einsum_pass, diagonal).nodes] == ["Reshape", "Slice"]


def test_the_pair_with_the_smallest_result_goes_first():
    # matrices times a vector: from the vector's end, never the [8, 8] product
    before = einsum_graph("ab,bc,c->a", (8, 8), (8, 8), (8,), out=(8,))
    after = run_pass(decompose_einsum_pass, before)
    assert [n.attrs["equation"] for n in after.nodes] == ["bc,c->b", "ab,b->a"]


def test_every_node_it_writes_is_used():
    # "ib,bi->b" has no GEMM form even transposed: no transpose is left behind
    after = run_pass(decompose_einsum_pass, einsum_graph("ib,bi->b", (5, 2), (2, 5), out=(2,)))
    used = {i for n in after.nodes for i in n.inputs} | set(after.outputs)
    assert all(o in used for n in after.nodes for o in n.outputs), after.nodes
    assert [n.op for n in after.nodes] == ["Transpose", "Mul", "ReduceSum"]
