"""Integer polynomials of named sizes, with floor, ceiling and modulo atoms:
the expressions SymDims (ir/symbolic.py) carry, their evaluation, printing,
and the decision of `p >= 0` / `p == 0` for every size where monotonicity
(and bounds of the division atoms) settles it.

A monomial: sorted (atom, power) pairs; () is the constant term. An atom is a
symbol name (str) or ("floordiv" | "ceildiv" | "mod", Poly, divisor). A Poly:
sorted (monomial, coefficient) pairs, no zero coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

Atom = object
Mono = tuple
Poly = tuple


def _key(atom: Atom) -> tuple:
    return (0, atom) if isinstance(atom, str) else (1, repr(atom))


def make_poly(terms: Mapping[Mono, int]) -> Poly:
    return tuple(sorted(((m, c) for m, c in terms.items() if c), key=lambda t: _mono_key(t[0])))


def _mono_key(m: Mono) -> tuple:
    return tuple((_key(a), p) for a, p in m)


def poly_const(c: int) -> Poly:
    return make_poly({(): c})


def poly_add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b:
        out[m] = out.get(m, 0) + sign * c
    return make_poly(out)


def _mono_mul(x: Mono, y: Mono) -> Mono:
    powers: dict = {}
    for atom, p in (*x, *y):
        powers[atom] = powers.get(atom, 0) + p
    return tuple(sorted(powers.items(), key=lambda t: _key(t[0])))


def poly_mul(a: Poly, b: Poly) -> Poly:
    out: dict = {}
    for ma, ca in a:
        for mb, cb in b:
            m = _mono_mul(ma, mb)
            out[m] = out.get(m, 0) + ca * cb
    return make_poly(out)


def constant_of(p: Poly) -> int | None:
    if not p:
        return 0
    if len(p) == 1 and p[0][0] == ():
        return p[0][1]
    return None


def exact_div(p: Poly, d: Poly) -> Poly | None:
    """p / d when d divides p into a polynomial with integer coefficients,
    else None: 256*b*s + 256*b*t over 32*s + 32*t is 8*b (a Reshape's -1 next
    to a symbolic dim, as torch.onnx writes attention's key transpose).

    Long division by the leading term: when p = q*d, p's leading term is
    q's times d's, so the reduction never stops early for a true quotient."""
    if not d:
        return None
    atoms = sorted({a for m, _ in (*p, *d) for a, _ in m}, key=_key)

    def order(m: Mono) -> tuple:  # graded lexicographic: a monomial order
        powers = dict(m)
        return (sum(powers.values()), tuple(powers.get(a, 0) for a in atoms))

    dm, dc = max(d, key=lambda t: order(t[0]))
    dpow = dict(dm)
    rest, out = dict(p), {}
    for _ in range(len(p) * (len(d) + 1) + 64):  # bounded: each step lowers the leading term
        rest = {m: c for m, c in rest.items() if c}
        if not rest:
            return make_poly(out)
        m, c = max(rest.items(), key=lambda t: order(t[0]))
        mp = dict(m)
        if c % dc or any(mp.get(a, 0) < k for a, k in dpow.items()):
            return None
        qm = tuple(sorted(((a, k - dpow.get(a, 0)) for a, k in mp.items()
                           if k != dpow.get(a, 0)), key=lambda t: _key(t[0])))
        out[qm] = out.get(qm, 0) + c // dc
        for m2, c2 in d:
            prod = _mono_mul(qm, m2)
            rest[prod] = rest.get(prod, 0) - (c // dc) * c2
    return None


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


def nondecreasing(p: Poly) -> bool:
    """Every non-constant term grows with the symbols (all >= 1)."""
    return all(c > 0 and all(_atom_monotone(a) for a, _ in m) for m, c in p if m)


def _atom_monotone(atom: Atom) -> bool:
    return isinstance(atom, str) or (atom[0] in ("floordiv", "ceildiv")
                                     and nondecreasing(atom[1]))


def decide_ge0(p: Poly, lows: Mapping[str, int] | None = None) -> bool | None:
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
        bound = poly_add(tuple((mm, Fraction(cc, d)) for mm, cc in q), poly_const(slack))
        for mm, cc in poly_mul(bound, ((rest, 1),)):
            out[mm] = out.get(mm, 0) + c * cc
    return make_poly(out)


def _decide_monotone(p: Poly, lows: Mapping[str, int] | None = None) -> bool | None:
    ones = _LowEnv(lows or {})
    if nondecreasing(p) and evaluate_poly(p, ones) >= 0:
        return True
    neg = tuple((m, -c) for m, c in p)
    if nondecreasing(neg) and evaluate_poly(neg, ones) > 0:
        return False
    return None


def decide_eq0(p: Poly, lows: Mapping[str, int] | None = None) -> bool | None:
    if not p:
        return True
    one = poly_const(-1)
    if decide_ge0(poly_add(p, one), lows) or decide_ge0(poly_add(poly_neg(p), one), lows):
        return False
    return None


def poly_neg(p: Poly) -> Poly:
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


def poly_substitute(p: Poly, env: Mapping[str, Poly]) -> Poly:
    """p with the symbols named in env replaced by those polynomials (inside
    division atoms too)."""
    total: Poly = ()
    for m, c in p:
        term = poly_const(c)
        for atom, k in m:
            if isinstance(atom, str):
                factor = env.get(atom, make_poly({((atom, 1),): 1}))
            else:
                kind, q, d = atom
                factor = make_poly({(((kind, poly_substitute(q, env), d), 1),): 1})
            for _ in range(k):
                term = poly_mul(term, factor)
        total = poly_add(total, term)
    return total


def decide_bounded(kind: str, p: Poly, lows: Mapping[str, int],
                   bounds: Mapping[str, Poly]) -> bool | None:
    """`p >= 0` / `p == 0` decided for every value 0 <= u <= bounds[u] of the
    bounded symbols in p (and every size of the others), or None. Each bounded
    symbol is set to its low or its bound, whichever makes p smallest (for
    "p >= 0 always") or largest (for "p < 0 always"): sound where every term
    is a product of nonnegative symbols, which is all this is tried on."""
    if any(not isinstance(a, str) for m, _ in p for a, _ in m):
        return None
    def extreme(lowest: bool) -> Poly:
        out: Poly = ()
        for m, c in p:
            shrink = (c > 0) == lowest  # this term is smallest with its symbols at 0
            env = {s: poly_const(0) if shrink else bounds[s]
                   for s, _ in m if s in bounds}
            out = poly_add(out, poly_substitute(((m, c),), env))
        return out
    low_lows = {**lows, **{s: 0 for s in bounds}}
    if kind == "ge":
        if decide_ge0(extreme(True), low_lows) is True:
            return True
        if decide_ge0(poly_add(poly_neg(extreme(False)), poly_const(-1)), low_lows) is True:
            return False
        return None
    if decide_bounded("ge", poly_add(p, poly_const(-1)), lows, bounds) is True or \
            decide_bounded("ge", poly_add(poly_neg(p), poly_const(-1)), lows, bounds) is True:
        return False
    return None
