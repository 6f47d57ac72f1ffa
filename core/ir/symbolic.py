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

import contextvars
import math
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction

# A monomial: sorted (atom, power) pairs; () is the constant term. An atom is a
# symbol name (str) or ("floordiv" | "mod", Poly, divisor).
# A Poly: sorted (monomial, coefficient) pairs, no zero coefficients.
Atom = object
Mono = tuple
Poly = tuple


class SymbolicError(Exception):
    """A SymDim used where no tracer records its guards (a bug in tinyc)."""


# ---- polynomials --------------------------------------------------------------


def _key(atom: Atom) -> tuple:
    return (0, atom) if isinstance(atom, str) else (1, repr(atom))


def _poly(terms: Mapping[Mono, int]) -> Poly:
    return tuple(sorted(((m, c) for m, c in terms.items() if c), key=lambda t: _mono_key(t[0])))


def _mono_key(m: Mono) -> tuple:
    return tuple((_key(a), p) for a, p in m)


def _const(c: int) -> Poly:
    return _poly({(): c})


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b:
        out[m] = out.get(m, 0) + sign * c
    return _poly(out)


def _mono_mul(x: Mono, y: Mono) -> Mono:
    powers: dict = {}
    for atom, p in (*x, *y):
        powers[atom] = powers.get(atom, 0) + p
    return tuple(sorted(powers.items(), key=lambda t: _key(t[0])))


def _mul(a: Poly, b: Poly) -> Poly:
    out: dict = {}
    for ma, ca in a:
        for mb, cb in b:
            m = _mono_mul(ma, mb)
            out[m] = out.get(m, 0) + ca * cb
    return _poly(out)


def _constant_of(p: Poly) -> int | None:
    if not p:
        return 0
    if len(p) == 1 and p[0][0] == ():
        return p[0][1]
    return None


def _exact_div(p: Poly, d: Poly) -> Poly | None:
    """p / d when d is one monomial dividing every term of p exactly."""
    if len(d) != 1:
        return None
    (dm, dc), = d
    dpow = dict(dm)
    out = {}
    for m, c in p:
        mp = dict(m)
        if c % dc or any(mp.get(a, 0) < k for a, k in dpow.items()):
            return None
        rest = {a: k - dpow.get(a, 0) for a, k in mp.items()}
        out[tuple(sorted(((a, k) for a, k in rest.items() if k), key=lambda t: _key(t[0])))] = \
            c // dc
    return _poly(out)


def evaluate_poly(p: Poly, env: Mapping[str, int]) -> int:
    total = 0
    for m, c in p:
        term = c
        for atom, k in m:
            term *= _atom_value(atom, env) ** k
        total += term
    return total


def _atom_value(atom: Atom, env: Mapping[str, int]) -> int:
    if isinstance(atom, str):
        return env[atom]
    kind, q, d = atom
    v = evaluate_poly(q, env)
    if kind == "ceildiv":
        return -(-v // d)
    return v // d if kind == "floordiv" else v % d


def _nondecreasing(p: Poly) -> bool:
    """Every non-constant term grows with the symbols (all >= 1)."""
    return all(c > 0 and all(_atom_monotone(a) for a, _ in m) for m, c in p if m)


def _atom_monotone(atom: Atom) -> bool:
    return isinstance(atom, str) or (atom[0] in ("floordiv", "ceildiv")
                                     and _nondecreasing(atom[1]))


def _decide_ge0(p: Poly, lows: Mapping[str, int] | None = None) -> bool | None:
    """p >= 0 for every size >= 1, if that is decided by monotonicity, first
    as it is, then with its division atoms replaced by polynomial bounds."""
    known = _decide_monotone(p, lows)
    if known is not None or not any(not isinstance(a, str) for m, _ in p for a, _ in m):
        return known
    if _decide_monotone(_relaxed(p, lower=True), lows) is True:
        return True
    if _decide_monotone(_relaxed(p, lower=False), lows) is False:
        return False
    return None


def _relaxed(p: Poly, lower: bool) -> Poly:
    """A poly (Fraction coefficients) below p everywhere (lower=True) or above
    it: each division atom in a term whose other factors are symbols (positive)
    is replaced by the bound that moves the term the right way:
    q/d - (d-1)/d <= q//d <= q/d <= ceil(q/d) <= q/d + (d-1)/d."""
    out: dict = {}
    for m, c in p:
        atoms = [(a, k) for a, k in m if not isinstance(a, str)]
        if len(atoms) != 1 or atoms[0][1] != 1 or atoms[0][0][0] == "mod":
            for key, v in ((m, c),):
                out[key] = out.get(key, 0) + v
            continue
        (kind, q, d), _ = atoms[0]
        rest = tuple((a, k) for a, k in m if isinstance(a, str))
        want_low = lower == (c > 0)
        slack = Fraction(0)
        if kind == "floordiv" and want_low:
            slack = -Fraction(d - 1, d)
        if kind == "ceildiv" and not want_low:
            slack = Fraction(d - 1, d)
        bound = _add(tuple((mm, Fraction(cc, d)) for mm, cc in q), _const(slack))
        for mm, cc in _mul(bound, ((rest, 1),)):
            out[mm] = out.get(mm, 0) + c * cc
    return _poly(out)


def _decide_monotone(p: Poly, lows: Mapping[str, int] | None = None) -> bool | None:
    ones = _LowEnv(lows or {})
    if _nondecreasing(p) and evaluate_poly(p, ones) >= 0:
        return True
    neg = tuple((m, -c) for m, c in p)
    if _nondecreasing(neg) and evaluate_poly(neg, ones) > 0:
        return False
    return None


def _decide_eq0(p: Poly, lows: Mapping[str, int] | None = None) -> bool | None:
    if not p:
        return True
    if _decide_ge0(_add(p, _const(-1)), lows) or _decide_ge0(_add(_neg(p), _const(-1)), lows):
        return False
    return None


def _neg(p: Poly) -> Poly:
    return tuple((m, -c) for m, c in p)


class _LowEnv(dict):
    """Each symbol at its smallest legal value: 1, or 0 for a symbol the
    compile allows to be empty (a KV cache's past length)."""

    def __init__(self, lows: Mapping[str, int]):
        super().__init__(lows)

    def __missing__(self, key: str) -> int:
        return 1


def poly_symbols(p: Poly) -> set[str]:
    out: set[str] = set()
    for m, _ in p:
        for atom, _ in m:
            if isinstance(atom, str):
                out.add(atom)
            else:
                out |= poly_symbols(atom[1])
    return out


def poly_text(p: Poly) -> str:
    if not p:
        return "0"
    parts = []
    for m, c in reversed(p):  # highest terms first
        factors = [_atom_text(a) + (f"^{k}" if k > 1 else "") for a, k in m]
        if not factors:
            parts.append(str(c))
        elif c == 1:
            parts.append("*".join(factors))
        elif c == -1:
            parts.append("-" + "*".join(factors))
        else:
            parts.append(f"{c}*" + "*".join(factors))
    return " + ".join(parts).replace("+ -", "- ")


def _atom_text(atom: Atom) -> str:
    if isinstance(atom, str):
        return atom
    kind, q, d = atom
    if kind == "ceildiv":
        return f"ceil(({poly_text(q)})/{d})"
    op = "//" if kind == "floordiv" else "%"
    return f"({poly_text(q)}){op}{d}"


# ---- guards -----------------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    """`poly >= 0` (kind "ge") or `poly == 0` (kind "eq") must be `holds`."""

    kind: str
    poly: Poly
    holds: bool

    def check(self, env: Mapping[str, int]) -> bool:
        v = evaluate_poly(self.poly, env)
        return ((v >= 0) if self.kind == "ge" else (v == 0)) == self.holds

    @property
    def text(self) -> str:
        """The relation as a person writes it: "N >= 8", "4*N == 32"."""
        op = {("ge", True): ">=", ("ge", False): "<", ("eq", True): "==",
              ("eq", False): "!="}[(self.kind, self.holds)]
        const = dict(self.poly).get((), 0)
        rest = tuple((m, c) for m, c in self.poly if m)
        return f"{poly_text(rest)} {op} {-const}"


@dataclass
class Tracer:
    """Collects the guards of one compile; `hints` are the symbols' values the
    compile is specialized around."""

    hints: dict[str, int] = field(default_factory=dict)
    # the smallest value each symbol may take (1 unless named here)
    lows: dict[str, int] = field(default_factory=dict)
    # the largest, where the user bounds it (CompileOptions.max_shapes); recorded
    # for the runtime, not used in decisions
    highs: dict[str, int] = field(default_factory=dict)
    guards: list[Guard] = field(default_factory=list)
    # for tinyc's developers: where each guard was taken (a few stack frames)
    record_origins: bool = False
    origins: list[list[str]] = field(default_factory=list)
    # decisions taken as given while one branch of a node is lowered (see
    # lower/lowering.py: a node may compile both outcomes of its guard)
    forced: dict[tuple[str, Poly], bool] = field(default_factory=dict)
    _seen: set = field(default_factory=set)

    def mark(self) -> int:
        return len(self.guards)

    def since(self, mark: int) -> list[Guard]:
        return self.guards[mark:]

    def rollback(self, mark: int) -> None:
        """Forget the guards recorded after `mark`."""
        for g in self.guards[mark:]:
            self._seen.discard(g)
        del self.guards[mark:]
        del self.origins[mark:]

    def add(self, g: Guard) -> None:
        if g not in self._seen:
            self._seen.add(g)
            self.guards.append(g)

    @contextmanager
    def forcing(self, g: Guard, outcome: bool) -> Iterator[None]:
        self.forced[(g.kind, g.poly)] = outcome
        try:
            yield
        finally:
            del self.forced[(g.kind, g.poly)]

    def decide(self, kind: str, p: Poly, hint_outcome: bool) -> bool:
        known = _decide_ge0(p, self.lows) if kind == "ge" else _decide_eq0(p, self.lows)
        if known is not None:
            return known
        if (kind, p) in self.forced:
            return self.forced[(kind, p)]
        g = Guard(kind, p, hint_outcome)
        if g not in self._seen:
            self._seen.add(g)
            self.guards.append(g)
            if self.record_origins:
                frames = traceback.extract_stack()[-12:-3]
                self.origins.append([f"{f.filename.split('/')[-1]}:{f.lineno} {f.line}"
                                     for f in frames])
        return hint_outcome


_TRACER: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar("tinyc_tracer",
                                                                       default=None)


@contextmanager
def tracing(tracer: Tracer) -> Iterator[Tracer]:
    token = _TRACER.set(tracer)
    try:
        yield tracer
    finally:
        _TRACER.reset(token)


def current_tracer() -> Tracer | None:
    """The tracer of the compile in progress (None for a static model)."""
    return _TRACER.get()


def _tracer() -> Tracer:
    t = _TRACER.get()
    if t is None:
        raise SymbolicError("a symbolic dimension was compared outside a compile")
    return t


# ---- SymDim -------------------------------------------------------------------------


class SymDim:
    """An integer expression of symbols with its value at the compile's hint."""

    __slots__ = ("poly", "hint")

    def __init__(self, poly: Poly, hint: int):
        self.poly, self.hint = poly, hint

    @staticmethod
    def symbol(name: str, hint: int) -> SymDim:
        return SymDim(_poly({((name, 1),): 1}), hint)

    @property
    def symbols(self) -> set[str]:
        return poly_symbols(self.poly)

    # -- arithmetic keeps the expression
    def _other(self, o: object) -> SymDim | None:
        if isinstance(o, SymDim):
            return o
        if isinstance(o, int) and not isinstance(o, bool):
            return SymDim(_const(o), o)
        try:
            import numpy as np  # numpy integers from shapes and constants
            if isinstance(o, np.integer):
                return SymDim(_const(int(o)), int(o))
        except ImportError:  # pragma: no cover
            pass
        return None

    def __add__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a + b)
        return dim(_add(self.poly, x.poly), self.hint + x.hint)

    __radd__ = __add__

    def __sub__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a - b)
        return dim(_add(self.poly, x.poly, -1), self.hint - x.hint)

    def __rsub__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: b - a)
        return x - self

    def __mul__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a * b)
        return dim(_mul(self.poly, x.poly), self.hint * x.hint)

    __rmul__ = __mul__

    def __neg__(self):
        return dim(_neg(self.poly), -self.hint)

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
        exact = _exact_div(self.poly, x.poly)
        if exact is not None:
            return dim(exact, self.hint // x.hint)
        d = _constant_of(x.poly)
        if d is None:
            d = int(x)  # a symbolic divisor that does not divide: specialize it
        if d <= 0:
            return int(self) // d
        if (c := _constant_of(self.poly)) is not None:
            return c // d
        if _nondecreasing(_neg(self.poly)):  # -(-p // d): a ceiling division of p
            return -dim(_poly({((("ceildiv", _neg(self.poly), d), 1),): 1}), -(self.hint // d))
        return dim(_poly({((("floordiv", self.poly, d), 1),): 1}), self.hint // d)

    def __rfloordiv__(self, o):
        x = self._other(o)
        return int(o // int(self)) if x is None else x // self

    def __mod__(self, o):
        x = self._other(o)
        if x is None:
            return self._float_op(o, lambda a, b: a % b)
        if _exact_div(self.poly, x.poly) is not None:
            return 0
        d = _constant_of(x.poly)
        if d is None:
            d = int(x)
        if d <= 0:
            return int(self) % d
        if (c := _constant_of(self.poly)) is not None:
            return c % d
        return dim(_poly({((("mod", self.poly, d), 1),): 1}), self.hint % d)

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
        return self._cmp(o, "ge", lambda a, b: _add(a, b, -1))

    def __le__(self, o):
        return self._cmp(o, "ge", lambda a, b: _add(b, a, -1))

    def __gt__(self, o):
        return self._cmp(o, "ge", lambda a, b: _add(_add(a, b, -1), _const(-1)))

    def __lt__(self, o):
        return self._cmp(o, "ge", lambda a, b: _add(_add(b, a, -1), _const(-1)))

    def __eq__(self, o):
        r = self._cmp(o, "eq", lambda a, b: _add(a, b, -1))
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
        _tracer().decide("eq", _add(self.poly, _const(-self.hint)), True)
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
    v = evaluate_poly(poly_of(_const(a), _const(b)), {})
    return v >= 0 if kind == "ge" else v == 0


def dim(p: Poly, hint: int) -> int | SymDim:
    """A SymDim, or a plain int where the expression is constant."""
    c = _constant_of(p)
    return c if c is not None else SymDim(p, hint)


def is_symbolic(d: object) -> bool:
    return isinstance(d, SymDim)


def hint_of(d: int | SymDim) -> int:
    """A dimension's value at the hint, for performance heuristics only (thread
    counts, cost estimates): a choice made from it must be valid for any size."""
    return d.hint if isinstance(d, SymDim) else int(d)


def same(a: int | SymDim, b: int | SymDim) -> bool:
    """Equal for every size, without a guard: for merging loops and other
    choices where "not known to be equal" is a correct answer."""
    if isinstance(a, SymDim) or isinstance(b, SymDim):
        pa = a.poly if isinstance(a, SymDim) else _const(int(a))
        pb = b.poly if isinstance(b, SymDim) else _const(int(b))
        return not _add(pa, pb, -1)
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
            elif not is_one(e) and d != e:
                raise ValueError(f"shapes {[[str(x) for x in s] for s in shapes]} do not "
                                 "broadcast")
        out.append(d)
    return tuple(out)


def smax(a: int | SymDim, b: int | SymDim) -> int | SymDim:
    """max() that decides (or guards) the comparison."""
    return a if a >= b else b


def smin(a: int | SymDim, b: int | SymDim) -> int | SymDim:
    return a if a <= b else b


def prod(values) -> int | SymDim:
    return math.prod(values)


def align_up(d: SymDim, align: int) -> int | SymDim:
    """A multiple of `align` at least `d` for every size: each coefficient is
    rounded up (toward zero where negative), which keeps the polynomial free of
    floor atoms the planner could not compare."""
    rounded = tuple((m, -(-c // align) * align) for m, c in d.poly)
    exact = _poly(dict(rounded))
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
