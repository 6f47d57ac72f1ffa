from __future__ import annotations

import re

import pytest

from tinyc.target.notation import NotationError, parse_statement


def test_vnni_dot():
    s = parse_statement("C[i] += A[k] * B[i, k]")
    assert s.accumulate and s.output.tensor == "C" and s.tensors == ("C", "A", "B")
    assert s.index_names == {"i", "k"} and s.reduction_indices == {"k"}
    assert s.operators == ("*",)


def test_affine_indices_and_constants():
    s = parse_statement("Y[n, co, y, x] += X[n, ci, y*2+ky, x*2+kx] * W[co, ci, ky, kx]")
    assert s.inputs[0].indices[2] == "y*2+ky"
    assert s.reduction_indices == {"ci", "ky", "kx"}
    assert parse_statement("C[0] += A[k] * B[k]").output.index_names() == set()


def test_plain_assignment_with_sum():
    s = parse_statement("C[i] = (A[i] + B[i]) * 2")
    assert not s.accumulate and s.operators == ("*", "+")


@pytest.mark.parametrize(("text", "message"), [
    ("C[i] += A[k] *", "expected a tensor access like A[i, k] at column 15, got the end"),
    ("C[i] += A[k] ** B[k]", "column 15, got '*'"),
    ("C[i += A[i]", "expected ']' at column 5, got '+='"),
    ("C[i] += A[k] B[k]", "expected the end of the statement at column 14"),
    ("C[i] += A[k] / B[k]", "unexpected character '/' at column 14"),
    ("C[] += A[k]", "expected an index name or integer at column 3"),
])
def test_errors_say_where_and_what_was_expected(text, message):
    with pytest.raises(NotationError, match=re.escape(message)):
        parse_statement(text)
