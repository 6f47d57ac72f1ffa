"""decompose_einsum: every Einsum the strided lowering cannot take becomes ops
tinyc lowers.

The Einsum lowering (lower/einsum.py) computes a contraction of two operands
(float32 on the GEMM, float64 and integers on a scalar strided kernel) and a
permutation of one, with no copies. Everything else that ONNX allows -
diagonals ("ii->i"), indices summed in one operand ("ij->i"), three or more
operands, an innermost batch index ("bi,bi->b"), float16 - is rewritten here,
in three steps (float16 and bfloat16 in float32, between two Casts):

1. each operand's diagonals (Transpose, Reshape, a strided Slice) and the sums
   of its indices no other operand and not the output name (ReduceSum);
2. the operands contracted pairwise, the pair with the smallest result first,
   each index summed as soon as no other operand and not the output needs it. A pair becomes a
   two-operand Einsum the lowering takes (its operands transposed to
   [batch, M, K] and [batch, K, N] if they are not already readable so);
   pairs it still refuses (no M and N: a batch of dot products; a dtype
   without a contraction kernel) multiply with broadcasting (Unsqueeze, Mul)
   and then ReduceSum;
3. the result transposed to the output's order.

Whether a node stays as it is is `program.einsum.gemm_groups`'s answer, the
same function the lowering plans with. Nodes this pass cannot rewrite
(unknown ranks, a diagonal of a named size) are left for the lowering to refuse
with its reason.
"""

from __future__ import annotations

from ..errors import ModelError, NotLowerable
from ..ir import DType, Node, TensorType
from ..program.einsum import CONTRACTION_DTYPES, gemm_groups, parse_equation
from .base import FunctionPass
from .einsum_terms import Dim, NoDecomposition, Term, TermBuilder, broadcast_dim
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph

HALF = (DType.float16, DType.bfloat16)  # computed in float32, rounded once

# a named (symbolic) size when choosing the order of contraction: likely large
NAMED_SIZE_GUESS = 1024

# stands for a named (symbolic) size when asking whether the GEMM takes an
# equation: its strides only depend on which sizes exceed 1
PROBE_SIZE = 2


def decompose_einsum(view: GraphView, node: Node) -> Rewrite | None:
    if not is_onnx(node, "Einsum"):
        return None
    types = [view.graph.types.get(x) for x in (*node.inputs, node.outputs[0])]
    if any(t is None or any(d is None for d in t.shape) for t in types):
        return None  # unknown ranks or sizes: the lowering refuses with its reason
    *in_types, out_type = types
    equation = node.attr("equation", "")
    equation = equation.decode() if isinstance(equation, bytes) else str(equation)
    try:
        subs, out = parse_equation(equation, [t.rank for t in in_types])
    except NotLowerable as e:
        raise ModelError(f"Einsum '{node.name}': {e}") from e
    shapes = [tuple(t.shape) for t in in_types]
    _check_equation(node, equation, subs, out, shapes)
    if _lowering_takes(equation, subs, out, shapes, tuple(out_type.shape), out_type.dtype):
        return None
    build = TermBuilder(view, node, out_type.dtype, view.graph.opsets.get("", 13))
    terms = [Term(x, s, shape) for x, s, shape in zip(node.inputs, subs, shapes, strict=True)]
    try:
        if out_type.dtype in HALF and _sums_or_multiplies(subs, out):
            _decompose_widened(build, terms, out, node.outputs[0])
        else:
            _decompose(build, terms, out, node.outputs[0])
    except NoDecomposition:
        return None
    return Rewrite(old=[node], new=build.nodes, types=build.types, constants=build.constants)


def _check_equation(node: Node, equation: str, subs: list[str], out: str,
                    shapes: list[tuple[Dim, ...]]) -> None:
    """What ONNX requires of the equation and that its sizes agree. A repeated
    index must have one size (a diagonal of a non-square block reads past it)."""
    where = f"Einsum '{node.name}' {equation!r}"
    letters = "".join(subs)
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    if arrow and "..." not in rhs and any(c not in lhs for c in letters):
        # as numpy and onnxruntime: the ellipsis' dims must go somewhere
        raise ModelError(f"{where}: the inputs' '...' stands for dims the output drops "
                         f"(write '...' in the output, or name the dims to sum)")
    for c in out:
        if c not in letters:
            raise ModelError(f"{where}: output index {c!r} names no input axis")
        if out.count(c) > 1:
            raise ModelError(f"{where}: output index {c!r} appears twice")
    for k, (s, shape) in enumerate(zip(subs, shapes, strict=True)):
        for c in set(s):
            sizes = {d for letter, d in zip(s, shape, strict=True) if letter == c}
            if len(sizes) > 1:
                raise ModelError(f"{where}: index {c!r} is repeated in operand {k} with "
                                 f"different sizes {' and '.join(sorted(map(str, sizes)))}")
    # across operands a size 1 broadcasts (the ellipsis' dims, which the contract
    # check before this pass does not see); two other numbers disagree
    for c in set(letters):
        sizes = {d for s, shape in zip(subs, shapes, strict=True)
                 for letter, d in zip(s, shape, strict=True) if letter == c and isinstance(d, int)}
        if len(sizes - {1}) > 1:
            raise ModelError(f"{where}: index {c!r} has sizes {sorted(sizes)} in different "
                             f"operands")


def _lowering_takes(equation: str, subs: list[str], out: str, shapes: list[tuple[Dim, ...]],
                     out_shape: tuple[Dim, ...], dtype: DType) -> bool:
    if any(len(set(s)) != len(s) for s in subs):
        return False
    if len(subs) == 1:  # a permutation is a strided copy of any dtype
        return sorted(subs[0]) == sorted(out)
    if len(subs) != 2 or dtype not in CONTRACTION_DTYPES:
        return False
    try:
        gemm_groups(equation, subs, out, [_probe(s) for s in shapes], _probe(out_shape))
    except NotLowerable:
        return False
    return True


def _probe(shape: tuple[Dim, ...]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else PROBE_SIZE for d in shape)


def _decompose(build: TermBuilder, terms: list[Term], out: str, y: str) -> None:
    terms = [_take_diagonals(build, t) for t in terms]
    terms = [build.reduce(t, _private_letters(t, terms, out)) for t in terms]
    if len(terms) == 1:
        build.finish(terms[0], out, y)
    while len(terms) > 1:
        i, j = _cheapest_pair(terms, out)
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        needed = out + "".join(t.subs for t in rest)
        last = not rest
        result = _contract(build, terms[i], terms[j], needed, out if last else None,
                           y if last else None)
        terms = rest[:i] + [result] + rest[i:]


def _cheapest_pair(terms: list[Term], out: str) -> tuple[int, int]:
    """The two terms whose contraction leaves the smallest result (then: the
    smallest loop nest, then the leftmost), numpy's greedy order: a chain of
    matrices and a vector is contracted from the vector's end, and an outer
    product is left for last."""
    best: tuple = ()
    for i in range(len(terms)):
        for j in range(i + 1, len(terms)):
            a, b = terms[i], terms[j]
            others = out + "".join(t.subs for k, t in enumerate(terms) if k not in (i, j))
            union = dict.fromkeys(a.subs + b.subs)
            kept = [c for c in union if c in others]
            key = (_volume(a, b, kept), _volume(a, b, list(union)), i, j)
            best = min(best, key) if best else key
    return best[2], best[3]


def _volume(a: Term, b: Term, letters: list[str]) -> int:
    total = 1
    for c in letters:
        d = _size(a, b, c)
        total *= d if isinstance(d, int) else NAMED_SIZE_GUESS
    return total


def _sums_or_multiplies(subs: list[str], out: str) -> bool:
    return len(subs) > 1 or set(subs[0]) != set(out)


def _decompose_widened(build: TermBuilder, terms: list[Term], out: str, y: str) -> None:
    """A half-precision Einsum computed in float32, as its GEMM does (float32
    accumulators), and rounded once at the end: summing in float16 loses digits
    at every step, and the float32 pairs take the GEMM."""
    half = build.dtype
    terms = [build.cast(t, DType.float32) for t in terms]
    wide = build.view.fresh(f"{build.base}/einsum_f32")
    build.types[wide] = TensorType(DType.float32, build.view.type_of(y).shape)
    _decompose(build, terms, out, wide)
    build.cast(Term(wide, out, ()), half, out=y)


def _take_diagonals(build: TermBuilder, t: Term) -> Term:
    while repeated := next((c for c in t.subs if t.subs.count(c) > 1), None):
        t = build.diagonal(t, repeated)
    return t


def _private_letters(t: Term, terms: list[Term], out: str) -> str:
    """t's letters that no other term and not the output name: summed first."""
    others = "".join(o.subs for o in terms if o is not t) + out
    return "".join(c for c in t.subs if c not in others)


def _contract(build: TermBuilder, a: Term, b: Term, needed: str, final: str | None,
              y: str | None) -> Term:
    """a and b contracted over the letters they share that `needed` lacks; the
    result's letters in `final`'s order when it is the output."""
    batch = "".join(c for c in a.subs if c in b.subs and c in needed)
    m = "".join(c for c in a.subs if c not in b.subs and c in needed)
    n = "".join(c for c in b.subs if c not in a.subs and c in needed)
    k = "".join(c for c in a.subs if c in b.subs and c not in needed)
    res = final if final is not None else batch + m + n
    sizes = {c: _size(a, b, c) for c in a.subs + b.subs}
    shape = tuple(sizes[c] for c in res)
    if build.dtype in CONTRACTION_DTYPES:
        direct = _lowering_takes_pair(a, b, res, shape)
        if direct:
            return build.einsum(a, b, res, shape, out=y)
        canon = batch + m + n
        if _lowering_takes_pair(_permuted(a, batch + m + k), _permuted(b, batch + k + n), canon,
                                tuple(sizes[c] for c in canon)):
            a2, b2 = build.transpose(a, batch + m + k), build.transpose(b, batch + k + n)
            if canon == res:
                return build.einsum(a2, b2, res, shape, out=y)
            return build.transpose(build.einsum(a2, b2, canon, tuple(sizes[c] for c in canon)),
                                   res, out=y)
    # multiply in a's order (no copy of a), then sum, then transpose the smaller
    # result into the output's order (an intermediate's order does not matter)
    order = a.subs + "".join(c for c in b.subs if c not in a.subs)
    product = build.multiply(build.align(a, order), build.align(b, order))
    summed = build.reduce(product, k)
    return summed if final is None else build.finish(summed, final, y)


def _permuted(t: Term, subs: str) -> Term:
    """t as a transpose to `subs` would give it (for asking, nothing is emitted)."""
    return Term(t.name, subs, tuple(t.dim(c) for c in subs))


def _size(a: Term, b: Term, c: str) -> Dim:
    if c in a.subs and c in b.subs:
        return broadcast_dim(a.dim(c), b.dim(c))
    return a.dim(c) if c in a.subs else b.dim(c)


def _lowering_takes_pair(a: Term, b: Term, res: str, shape: tuple[Dim, ...]) -> bool:
    equation = f"{a.subs},{b.subs}->{res}"
    try:
        gemm_groups(equation, [a.subs, b.subs], res, [_probe(a.shape), _probe(b.shape)],
                    _probe(shape))
    except NotLowerable:
        return False
    return True


decompose_einsum_pass = FunctionPass("decompose_einsum",
                                     lambda g: rewrite_graph(g, [decompose_einsum]))
