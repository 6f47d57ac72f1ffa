"""Data-dependent ("unbacked") symbols: decisions their bounds settle, sizes
at their bounds, and decisions that must become run-time variants."""

from __future__ import annotations

import pytest

from tinyc.ir.poly import decide_bounded, make_poly, poly_const, poly_substitute
from tinyc.ir.symbolic import DataDependentDecision, SymDim, Tracer, tracing
from tinyc.ir.unbacked import unbacked_symbol, upper_bound


def _sym(name: str):
    return make_poly({((name, 1),): 1})


def test_substitution_reaches_inside_division_atoms():
    n = SymDim.symbol("N", 4)
    with tracing(Tracer(hints={"N": 4})):
        p = ((n * 3) // 2).poly
    out = poly_substitute(p, {"N": poly_const(4)})
    assert out != p and "N" not in str(out)


def test_decisions_the_bound_settles():
    bounds = {"u": poly_const(12)}
    n_minus_u = make_poly({(("N", 1),): 1, (("u", 1),): -1})
    assert decide_bounded("ge", _sym("u"), {}, bounds) is True            # u >= 0
    twelve_minus_u = make_poly({(): 12, (("u", 1),): -1})
    assert decide_bounded("ge", twelve_minus_u, {}, bounds) is True      # u <= 12
    assert decide_bounded("ge", make_poly({(("u", 1),): 1, (): -13}), {}, bounds) is False
    assert decide_bounded("ge", make_poly({(("u", 1),): 1, (): -1}), {}, bounds) is None
    assert decide_bounded("ge", n_minus_u, {}, {"u": _sym("N")}) is True  # u <= N


def test_a_tracer_plans_at_the_bound_and_records_undecided_guards():
    tracer = Tracer(hints={"N": 3})
    n = SymDim.symbol("N", 3)
    with tracing(tracer):
        u = tracer.new_unbacked(n * 4, "nonzero")
        assert unbacked_symbol(u) == "nonzero0" and unbacked_symbol(u * 2) is None
        assert str(upper_bound(u * 2 + n)) == str(n * 9)
        assert u >= 0 and u <= n * 4           # settled by the bound: no guard
        assert not tracer.guards
        assert (u == 0) is False               # the hint's outcome, recorded ...
        (guard,) = tracer.guards
        assert tracer.data_dependent(guard)    # ... but never checkable before a run
        with pytest.raises(DataDependentDecision, match="nonzero0"):
            tracer.refuse_data_dependent(tracer.guards)
