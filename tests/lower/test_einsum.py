"""Einsum against onnxruntime: matmul-like equations with batch, transposed and
permuted operands and outputs, broadcasting ellipses, constant weights, dot and
outer products, permutations of one operand; and what is not lowerable."""

from __future__ import annotations

import numpy as np
import pytest
from op_batch import Case, check_cases, ort_oracle

from tinyc.errors import NotLowerable
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.einsum import lower_einsum, parse_equation
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target

SIZES = dict(b=2, h=3, i=5, j=7, k=19, q=6, d=8, a=3, n=4, m=17, c=4, w=6)


def _operand(rng, subs: str, **override) -> np.ndarray:
    sizes = {**SIZES, **override}
    return rng.standard_normal([sizes[c] for c in subs]).astype(np.float32)


def _case(rng, equation: str, consts=(), **override) -> Case:
    lhs = equation.split("->")[0].replace("...", "")
    inputs = [_operand(rng, s, **override) for s in lhs.split(",")]
    return Case("Einsum", inputs, {"equation": equation}, consts=consts, opset=12)


def test_two_operand_equations(rng):
    equations = ["ij,jk->ik", "ij,kj->ik", "ji,jk->ik", "ij,jk->ki", "ik,kj->ji",
                 "bij,bjk->bik", "bhqd,bhkd->bhqk", "bhqk,bhkd->bqhd", "bqhd,bkhd->bhqk",
                 "bij,jk->bik", "i,i->", "i,j->ij", "bn,anm->bam", "ij,jk", "bik,bjk->bij",
                 "nchw,kc->nkhw"]
    cases = [_case(rng, e) for e in equations]
    cases += [_case(rng, "bij,jk->bik", consts=(1,)), _case(rng, "bhqd,dk->bhqk", consts=(1,)),
              _case(rng, "ij,kj->ik", consts=(1,))]
    cases.append(Case("Einsum", [_operand(rng, "bij"), _operand(rng, "ajk", a=1)],
                      {"equation": "...ij,...jk->...ik"}, opset=12))  # broadcast batch
    cases.append(Case("Einsum", [_operand(rng, "hij"), _operand(rng, "jk")],
                      {"equation": "...ij,jk->...ik"}, opset=12))
    check_cases(cases, ort_oracle, rtol=1e-4, atol=1e-4)


def test_one_operand_permutations(rng):
    cases = [_case(rng, e) for e in ("ij->ji", "ijk->kij", "bhqd->bqhd", "...ij->...ji")]
    check_cases(cases, ort_oracle, rtol=0, atol=0)


def test_identity_is_a_view():
    types = {v: TensorType(DType.float32, (3, 4)) for v in ("x", "y")}
    node = Node("Einsum", ("x",), ("y",), {"equation": "ij->ij"}, name="e")
    g = Graph("g", ("x",), ("y",), (node,), types, {}, {"": 12})
    assert lower_einsum(node, LowerContext(g, host_target())).alias_of == "x"


def test_parse_equation_expands_ellipsis_and_implicit_output():
    assert parse_equation("...ij,jk->...ik", [4, 2]) == (["ABij", "jk"], "ABik")
    assert parse_equation("ij,jk", [2, 2]) == (["ij", "jk"], "ik")
    assert parse_equation("b...d,b...e", [3, 2]) == (["bAd", "be"], "Ade")


@pytest.mark.parametrize("equation, shapes, reason", [
    ("ii->i", [(3, 3)], "diagonal"),
    ("ij->i", [(3, 4)], "reduction"),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "3 operands"),
    ("bi,bi->b", [(2, 3), (2, 3)], "batch index"),
    ("ij,jk->i", [(2, 3), (3, 4)], "one operand only"),
])
def test_not_lowerable_equations_say_why(equation, shapes, reason):
    types = {f"x{k}": TensorType(DType.float32, s) for k, s in enumerate(shapes)}
    types["y"] = TensorType(DType.float32, (2,))
    node = Node("Einsum", tuple(f"x{k}" for k in range(len(shapes))), ("y",),
                {"equation": equation}, name="e")
    g = Graph("g", tuple(types)[:-1], ("y",), (node,), types, {}, {"": 12})
    with pytest.raises(NotLowerable, match=reason) as info:
        lower_einsum(node, LowerContext(g, host_target()))
    assert equation in str(info.value)
