"""Symbolic dimensions: integer expressions of named sizes, traced with guards.

A dimension the model leaves open (a `dim_param` such as "batch") becomes a
SymDim while a model is lowered. A SymDim is an integer polynomial of symbols
(plus floor-division and modulo atoms) together with its *hint*: its value at
the concrete sizes the compile was started with. Lowering code computes with
SymDims as with ints, and the expressions flow into the kernels' run-time
arguments and the memory plan, to be evaluated by the generated code from the
sizes of each run.

Whenever lowering makes a decision on a SymDim (a comparison, `range(n)`,
`int(n)`, a numpy shape), the tracer decides it for every legal size when it
can (sizes are >= 1, and the polynomials met here are monotone), and otherwise
decides it by the hint and records a *guard*: the relation and its outcome.
The compiled code is valid exactly where all its guards hold; the runtime
checks them before any native code runs. So a lowering that knows nothing of
symbols is still correct, merely specialized (a guard `N == 8`), and making a
lowering symbolic removes guards, never adds a silent assumption. This is the
SymInt-with-guards design of PyTorch's dynamic shapes.

Why not sympy: the memory planner compares thousands of sizes per model; a
sorted tuple of integer terms compares in microseconds, a sympy expression in
tens of them, and we only need polynomials, floor division and modulo.
"""

from __future__ import annotations

import math

from ..errors import NotLowerable
from .poly import (  # noqa: F401 (evaluate_poly, poly_text: re-exported)
    Poly,
    constant_of,
    decide_bounded,
    decide_eq0,
    decide_ge0,
    evaluate_poly,
    exact_div,
    make_poly,
    nondecreasing,
    poly_add,
    poly_const,
    poly_mul,
    poly_neg,
    poly_substitute,
    poly_symbols,
    poly_text,
)
from .tracer import (  # noqa: F401 (re-exported: the tracer's names live here too)
    DataDependentDecision,
    Guard,
    SymbolicError,
    Tracer,
    _tracer,
    current_tracer,
    tracing,
)

# ---- SymDim -------------------------------------------------------------------------


class SymDim:
    """An integer expression of symbols with its value at the compile's hint."""

    __slots__ = ("poly", "hint")

    def __init__(self, poly: Poly, hint: int):
        self.poly, self.hint = poly, hint

    @staticmethod
    def symbol(name: str, hint: int) -> SymDim:
        return SymDim(make_poly({((name, 1),): 1}), hint)

    @property
    def symbols(self) -> set[str]:
        return poly_symbols(self.poly)

    # -- arithmetic keeps the expression
    def _other(self, o: object) -> SymDim | None:
        if isinstance(o, SymDim):
            return o
        if isinstance(o, int) and not isinstance(o, bool):
            return SymDim(poly_const(o), o)
        try:
            import numpy as np  # numpy integers from shapes and constants
            if isinstance(o, np.integer):
                return SymDim(poly_const(int(o)), int(o))
        except ImportError:  # pragma: no cover
            pass
        return None

    def __add__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a + b)
        return dim(poly_add(self.poly, x.poly), self.hint + x.hint)

    __radd__ = __add__

    def __sub__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a - b)
        return dim(poly_add(self.poly, x.poly, -1), self.hint - x.hint)

    def __rsub__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: b - a)
        return x - self

    def __mul__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a * b)
        return dim(poly_mul(self.poly, x.poly), self.hint * x.hint)

    __rmul__ = __mul__

    def __neg__(self):
        return dim(poly_neg(self.poly), -self.hint)

    def __pos__(self):
        return self

    def __pow__(self, k):
        if isinstance(k, int) and k >= 0:
            out: object = 1
            for _ in range(k):
                out = out * self
            return out
        return self._float_op(k, lambda a, b: a ** b)

    def __floordiv__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a // b)
        exact = exact_div(self.poly, x.poly)
        if exact is not None:  # (a divisor of sizes can be 0 at the hint: 0 // 0)
            hint = self.hint // x.hint if x.hint else evaluate_poly(exact, _tracer().hints)
            return dim(exact, hint)
        d = constant_of(x.poly)
        if d is None:
            d = int(x)  # a symbolic divisor that does not divide: specialize it
        if d <= 0:
            return int(self) // d
        if (c := constant_of(self.poly)) is not None:
            return c // d
        if nondecreasing(poly_neg(self.poly)):  # -(-p // d): a ceiling division of p
            ceil = make_poly({((("ceildiv", poly_neg(self.poly), d), 1),): 1})
            return -dim(ceil, -(self.hint // d))
        return dim(make_poly({((("floordiv", self.poly, d), 1),): 1}), self.hint // d)

    def __rfloordiv__(self, o):
        x = self._other(o)
        return int(o // int(self)) if x is None else x // self

    def __mod__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a % b)
        if exact_div(self.poly, x.poly) is not None:
            return 0
        d = constant_of(x.poly)
        if d is None:
            d = int(x)
        if d <= 0:
            return int(self) % d
        if (c := constant_of(self.poly)) is not None:
            return c % d
        return dim(make_poly({((("mod", self.poly, d), 1),): 1}), self.hint % d)

    def __rmod__(self, o):
        x = self._other(o)
        return (o % int(self)) if x is None else x % self

    def __truediv__(self, o):
        return self._float_op(o, lambda a, b: a / b)

    def __rtruediv__(self, o):
        return self._float_op(o, lambda a, b: b / a)

    def _float_op(self, o, fn):
        """Arithmetic with a non-integer: the result is a float of the hint, so
        the value is specialized (guarded) first."""
        if isinstance(o, SymDim):
            return fn(float(self), float(o))
        return fn(float(self), o)

    # -- decisions are decided for all sizes or guarded
    def _cmp(self, o, kind: str, poly_of) -> bool:
        x = self._other(o)
        if x is None:
            return NotImplemented
        p = poly_of(self.poly, x.poly)
        hint = evaluate_hint(kind, p, self.hint, x.hint, poly_of)
        return _tracer().decide(kind, p, hint)

    def __ge__(self, o):
        return self._cmp(o, "ge", lambda a, b: poly_add(a, b, -1))

    def __le__(self, o):
        return self._cmp(o, "ge", lambda a, b: poly_add(b, a, -1))

    def __gt__(self, o):
        return self._cmp(o, "ge", lambda a, b: poly_add(poly_add(a, b, -1), poly_const(-1)))

    def __lt__(self, o):
        return self._cmp(o, "ge", lambda a, b: poly_add(poly_add(b, a, -1), poly_const(-1)))

    def __eq__(self, o):
        r = self._cmp(o, "eq", lambda a, b: poly_add(a, b, -1))
        return r

    def __ne__(self, o):
        r = self.__eq__(o)
        return r if r is NotImplemented else not r

    def __bool__(self) -> bool:
        return self != 0

    def __hash__(self) -> int:
        return hash(self.poly)

    # -- leaving the symbolic world specializes
    def __index__(self) -> int:
        if not _tracer().decide("eq", poly_add(self.poly, poly_const(-self.hint)), True):
            # lowering the other side of `self == hint` (lower/lowering.py forces
            # it false): there is no integer to give, and the hint would be wrong
            raise NotLowerable(f"{self} is used as a number, which needs {self} == "
                               f"{self.hint}")
        return self.hint

    __int__ = __index__

    def __float__(self) -> float:
        return float(self.__index__())

    def __trunc__(self):
        return self

    __floor__ = __ceil__ = __round__ = __trunc__

    def __abs__(self):
        return self if self >= 0 else -self

    def __str__(self) -> str:
        return poly_text(self.poly)

    def __repr__(self) -> str:
        return f"SymDim({self}, hint={self.hint})"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else format(self.__index__(), spec)


def evaluate_hint(kind: str, p: Poly, a: int, b: int, poly_of) -> bool:
    """The relation's outcome at the hint (from the operands' hints: atoms of
    the polynomial need no environment)."""
    v = evaluate_poly(poly_of(poly_const(a), poly_const(b)), {})
    return v >= 0 if kind == "ge" else v == 0


def dim(p: Poly, hint: int) -> int | SymDim:
    """A SymDim, or a plain int where the expression is constant."""
    c = constant_of(p)
    return c if c is not None else SymDim(p, hint)


def hint_of(d: int | SymDim) -> int:
    """A dimension's value at the hint, for performance heuristics only (thread
    counts, cost estimates): a choice made from it must be valid for any size."""
    return d.hint if isinstance(d, SymDim) else int(d)


def same(a: int | SymDim, b: int | SymDim) -> bool:
    """Equal for every size, without a guard: for merging loops and other
    choices where "not known to be equal" is a correct answer."""
    if isinstance(a, SymDim) or isinstance(b, SymDim):
        pa = a.poly if isinstance(a, SymDim) else poly_const(int(a))
        pb = b.poly if isinstance(b, SymDim) else poly_const(int(b))
        return not poly_add(pa, pb, -1)
    return a == b


def is_one(d: object) -> bool:
    """A literal 1 (a symbol that is 1 at run time does not stretch)."""
    return not isinstance(d, SymDim) and d == 1


def broadcast_shapes(*shapes) -> tuple:
    """numpy's broadcasting rule on dims that may be symbolic: a literal 1
    stretches; two other dims must be equal (a guard where they are symbols).
    ValueError if they do not broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out: list = []
    for axis in range(rank):
        d: object = 1
        for s in shapes:
            k = axis - (rank - len(s))
            if k < 0:
                continue
            e = s[k]
            if is_one(d):
                d = e
            elif not is_one(e) and _data_dependent_pair(d, e):
                raise ValueError(f"dims {d} and {e} would broadcast by a size computed "
                                 "from data during the run; tinyc compiles that only where "
                                 "both are the same expression")
            elif not is_one(e) and d != e:
                raise ValueError(f"shapes {[[str(x) for x in s] for s in shapes]} do not "
                                 "broadcast")
        out.append(d)
    return tuple(out)


def _unbacked_names() -> set[str]:
    t = current_tracer()
    return set(t.unbacked) if t is not None else set()


def _data_dependent_pair(a, b) -> bool:
    """Two dims, one data-dependent, not the same expression (so not equal
    for every run; broadcasting them would need the run's value)."""
    names = _unbacked_names()
    deps = [isinstance(x, SymDim) and bool(poly_symbols(x.poly) & names) for x in (a, b)]
    return any(deps) and not same(a, b)


def smax(a: int | SymDim, b: int | SymDim) -> int | SymDim:
    """max() that decides (or guards) the comparison."""
    return a if a >= b else b


def smin(a: int | SymDim, b: int | SymDim) -> int | SymDim:
    return a if a <= b else b


def align_up(d: SymDim, align: int) -> int | SymDim:
    """A multiple of `align` at least `d` for every size: each coefficient is
    rounded up (toward zero where negative), which keeps the polynomial free of
    floor atoms the planner could not compare."""
    rounded = tuple((m, -(-c // align) * align) for m, c in d.poly)
    exact = make_poly(dict(rounded))
    return dim(exact, evaluate_poly(exact, _tracer().hints))


def split_content(d: SymDim) -> tuple[int, SymDim]:
    """(g, q) with d == g * q, g > 0 the gcd of d's coefficients, and q's
    leading coefficient positive: sizes of one family share q."""
    g = 0
    for _, c in d.poly:
        g = math.gcd(g, c)
    if d.poly[-1][1] < 0:
        g = -g
    q = tuple((m, c // g) for m, c in d.poly)
    qd = SymDim(q, d.hint // g)
    if g < 0:
        raise SymbolicError(f"size {d} is negative for large sizes")
    if not qd >= 0:  # decided for sizes' usual forms; else a guard
        raise SymbolicError(f"size {d} can be negative")
    return g, qd
