"""An op's contraction seen as the GEMM core  C[m, n] += A[m, k] * B[k, n].

Lowering states what an op computes in index notation, e.g. a conv

    Y[n, co, y, x] += X[n, ci, y*2+ky, x*2+kx] * W[co, ci, ky, kx]

Its indices fall into the GEMM's roles by the tensors they appear in: in C and A
only -> m, in C and B only -> n, in A and B only -> k (reduced), in all three ->
a batch. Which input plays A is the lowering's choice (a conv on a small image
runs transposed, pixels as rows). What else had to happen for the op to *be* a
GEMM is listed as layout transforms: im2col for affine indices, several indices
folded into one GEMM dimension, an operand read transposed by its packer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..target.notation import Access, Statement, parse_statement

GEMM_CORE = parse_statement("C[m, n] += A[m, k] * B[k, n]")


class NotAGemm(ValueError):
    """The statement is not a two-input multiply-accumulate; the message says why."""


@dataclass(frozen=True)
class GemmForm:
    statement: Statement  # the op's
    roles: dict[str, str]  # GEMM tensor (A, B, C) -> the op's tensor
    m: tuple[str, ...]  # the op's indices playing m, in C's order
    n: tuple[str, ...]
    k: tuple[str, ...]  # in A's order
    batch: tuple[str, ...]
    dtypes: dict[str, str]  # GEMM tensor (A, B, C) -> dtype
    transforms: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        def dims(ix: tuple[str, ...]) -> str:
            return "*".join(ix) if ix else "1"

        return (f"m={dims(self.m)}, n={dims(self.n)}, k={dims(self.k)}"
                + (f", batch={dims(self.batch)}" if self.batch else ""))


def gemm_form(statement: str | Statement, dtypes: dict[str, str], a: str) -> GemmForm:
    """Classify `statement` (op tensors' dtypes in `dtypes`) with input `a` as GEMM's A."""
    st = parse_statement(statement) if isinstance(statement, str) else statement
    _require_mac(st)
    a_acc = next((x for x in st.inputs if x.tensor == a), None)
    if a_acc is None:
        raise NotAGemm(f"{a} is not an input of '{st.text}'")
    b_acc = next(x for x in st.inputs if x is not a_acc)
    c_ix, a_ix, b_ix = _plain(st.output), a_acc.index_names(), b_acc.index_names()
    m = tuple(i for i in _order(st.output) if i in a_ix and i not in b_ix)
    n = tuple(i for i in _order(st.output) if i in b_ix and i not in a_ix)
    batch = tuple(i for i in _order(st.output) if i in a_ix and i in b_ix)
    k = tuple(i for i in _order(a_acc) if i in b_ix and i not in c_ix)
    stray = (a_ix | b_ix) - set(m + n + k + batch)
    if stray:
        raise NotAGemm(f"indices {', '.join(sorted(stray))} are in only one input")
    roles = {"A": a, "B": b_acc.tensor, "C": st.output.tensor}
    form = GemmForm(st, roles, m, n, k, batch,
                    {r: dtypes[t] for r, t in roles.items()})
    return GemmForm(st, roles, m, n, k, batch, form.dtypes,
                    _transforms(form, a_acc, b_acc))


def _require_mac(st: Statement) -> None:
    if not st.accumulate or len(st.inputs) != 2 or st.operators != ("*",):
        raise NotAGemm(f"'{st.text}' is not C += X * Y")
    if st.inputs[0].tensor == st.inputs[1].tensor:
        raise NotAGemm(f"'{st.text}' multiplies a tensor by itself")
    if not st.output.index_names() <= _plain(st.output):
        raise NotAGemm("the output has affine indices")


def _plain(acc: Access) -> set[str]:
    return {ix for ix in acc.indices if re.fullmatch(r"[A-Za-z_]\w*", ix)}


def _order(acc: Access) -> list[str]:
    """Index names in order of appearance."""
    names: list[str] = []
    for ix in acc.indices:
        names += [n for n in re.findall(r"[A-Za-z_]\w*", ix) if n not in names]
    return names


def _transforms(form: GemmForm, a_acc: Access, b_acc: Access) -> tuple[str, ...]:
    out = []
    for role, acc in (("A", a_acc), ("B", b_acc)):
        affine = [ix for ix in acc.indices if not re.fullmatch(r"[A-Za-z_]\w*|\d+", ix)]
        if affine:
            out.append(f"im2col: {role} = {acc.tensor} at {', '.join(affine)}")
    for name, ix in (("m", form.m), ("n", form.n), ("k", form.k)):
        if len(ix) > 1:
            out.append(f"{name} = {'*'.join(ix)}")
    if _innermost_in(a_acc, form.m):
        out.append(f"A = {a_acc.tensor} transposed (k-major), reordered by packing")
    if _innermost_in(b_acc, form.k):
        out.append(f"B = {b_acc.tensor} transposed (n-major), reordered by packing")
    if _innermost_in(form.statement.output, form.m):
        out.append("C stored transposed (column-major)")
    return tuple(out)


def _innermost_in(acc: Access, indices: tuple[str, ...]) -> bool:
    """Is acc's last index a plain one among `indices` (affine views are im2col's)?"""
    return bool(acc.indices) and acc.indices[-1] in indices
