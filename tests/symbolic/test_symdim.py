"""SymDim: integer expressions of symbols, decided for every size or guarded."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from tinyc.errors import NotLowerable
from tinyc.ir.symbolic import (
    SymbolicError,
    SymDim,
    Tracer,
    align_up,
    evaluate_poly,
    split_content,
    tracing,
)


def _env(**values):
    return values


def test_arithmetic_keeps_the_expression_and_the_hint():
    with tracing(Tracer(hints={"N": 8, "S": 5})):
        n, s = SymDim.symbol("N", 8), SymDim.symbol("S", 5)
        e = (n * 3 + s) * 4 - 2
        assert str(e) == "4*S + 12*N - 2" and e.hint == 114
        assert (n * s * 64) // (n * s) == 64  # exact division collapses to an int
        assert str((s - 3) // 2 + 1) == "(S - 3)//2 + 1"
        assert str(-(-n // 8)) == "ceil((N)/8)"


def test_division_by_a_polynomial_that_divides_exactly_records_no_guard():
    """torch.onnx's key transpose: Reshape(k, [-1, total, 32]) of a [B, 8, S + P, 32]
    tensor divides 256*B*(S + P) by 32*(S + P): 8*B for every size, no guard."""
    t = Tracer(hints={"B": 1, "S": 4, "P": 3})
    with tracing(t):
        b, s, p = (SymDim.symbol(n, h) for n, h in (("B", 1), ("S", 4), ("P", 3)))
        assert str((256 * b * s + 256 * b * p) // (32 * s + 32 * p)) == "8*B"
        assert (256 * b * s + 256 * b * p) % (32 * s + 32 * p) == 0
        assert str((s * s - p * p) // (s - p)) == "S + P"
        assert str((b * s * p + 3 * b * p) // (s + 3)) == "B*P"
        assert t.guards == []
        # not exact over the integers: the divisor is specialized, a guard
        assert (2 * s * s + s) // (2 * s + 2) == (2 * 16 + 4) // 10
        assert t.guards
    with tracing(Tracer(hints={"B": 2, "S": 0, "P": 0})):  # a divisor that is 0 at the hints
        b, s, p = (SymDim.symbol(n, h) for n, h in (("B", 2), ("S", 0), ("P", 0)))
        q = (256 * b * s + 256 * b * p) // (32 * s + 32 * p)
        assert str(q) == "8*B" and q.hint == 16


def test_decisions_true_for_every_size_record_no_guard():
    t = Tracer(hints={"N": 8})
    with tracing(t):
        n = SymDim.symbol("N", 8)
        assert n * 3 * 224 > 100 and n >= 1 and n * 4 != 0 and bool(n)
        assert -(-n // 8) * 8192 >= n * 512  # ceil(N/8) >= N/8: decided through its bound
        assert not (n < 1)
    assert t.guards == []


def test_undecidable_decisions_follow_the_hint_and_are_guards():
    t = Tracer(hints={"N": 8})
    with tracing(t):
        n = SymDim.symbol("N", 8)
        assert n >= 8 and n == 8 and not (n < 8)
        assert int(n) == 8  # leaving the symbolic world specializes
        assert np.zeros((n, 2)).shape == (8, 2)
    texts = [g.text for g in t.guards]
    assert "N >= 8" in texts and "N == 8" in texts
    assert all(g.check({"N": 8}) for g in t.guards)
    assert not all(g.check({"N": 9}) for g in t.guards)


def test_a_number_is_refused_where_the_hint_is_forced_false():
    """lower/lowering.py lowers a node again with its one guard forced the other
    way; a size used as a number there has no value to give (the hint is the
    wrong one): int() refuses, and the node keeps its guard instead of a variant."""
    t = Tracer(hints={"N": 8})
    with tracing(t):
        n = SymDim.symbol("N", 8)
        assert int(n * 3) == 24
        (guard,) = t.guards
        with t.forcing(guard, False):
            with pytest.raises(NotLowerable, match="3\\*N == 24"):
                int(n * 3)
            with pytest.raises(NotLowerable):
                np.zeros(n * 3)
            with pytest.raises(NotLowerable):
                range(n * 3)


def test_a_symdim_outside_a_compile_is_refused():
    with pytest.raises(SymbolicError):
        _ = SymDim.symbol("N", 1) > 3


def test_expressions_evaluate_like_python_integers():
    rng = random.Random(0)
    cases = [(lambda a, b: a * b - 5), (lambda a, b: (a * 7 - 20) // 4),
             (lambda a, b: -(-(b * 3 + 1) // 8)), (lambda a, b: (a * b + 3) % 5),
             (lambda a, b: (a - b) * (a + b)), (lambda a, b: ((a * 5 - 11) // 3) * b + 2)]
    with tracing(Tracer(hints={"A": 3, "B": 7})):
        a, b = SymDim.symbol("A", 3), SymDim.symbol("B", 7)
        for f in cases:
            e = f(a, b)
            assert e.hint == f(3, 7)
            for _ in range(20):
                x, y = rng.randint(1, 50), rng.randint(1, 50)
                assert evaluate_poly(e.poly, {"A": x, "B": y}) == f(x, y), (str(e), x, y)


def test_align_up_and_families():
    with tracing(Tracer(hints={"N": 3})):
        n = SymDim.symbol("N", 3)
        size = n * 4000 + 12
        aligned = align_up(size, 64)
        for v in range(1, 100):
            got, raw = evaluate_poly(aligned.poly, {"N": v}), evaluate_poly(size.poly, {"N": v})
            assert got >= raw and got % 64 == 0
        g, q = split_content(n * 602112)
        assert g == 602112 and str(q) == "N"


@pytest.mark.parametrize("a,b", itertools.product([1, 2, 7], [1, 3]))
def test_guard_checks_match_python(a, b):
    t = Tracer(hints={"A": a, "B": b})
    with tracing(t):
        x, y = SymDim.symbol("A", a), SymDim.symbol("B", b)
        _ = x * 2 >= y + 3
        _ = x % 2 == 0
    for g in t.guards:
        assert g.check({"A": a, "B": b})
