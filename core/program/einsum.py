"""The Einsum equation as the GEMM lowering sees it: parsed subscripts and the
grouping of a two-operand contraction into one strided GEMM (batch, M, N, K).

`gemm_groups` serves float32's GEMM and, with the same strides, the scalar
contraction kernel of the other `CONTRACTION_DTYPES`.

Neutral ground between two stages: lowering (lower/einsum.py) plans its calls
from `gemm_groups`, and the decomposition pass (passes/decompose_einsum.py)
asks the same function whether a node can stay on that path, so the two never
disagree about which equations the GEMM takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import NotLowerable
from ..ir import DType

MAX_CALLS = 4096  # GEMM calls one node may unroll into
# what the strided contraction kernel (codegen/kernels/ops/contract.py) computes
# besides float32's GEMM: float64 and whole-byte integers, which wrap as ONNX's do
TYPED_CONTRACTION = (DType.float64, DType.int8, DType.int16, DType.int32, DType.int64,
                     DType.uint8, DType.uint16, DType.uint32, DType.uint64)
CONTRACTION_DTYPES = (DType.float32, *TYPED_CONTRACTION)
SPARE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def parse_equation(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """(subscripts per input, output subscripts), with '...' expanded to letters
    that do not occur in the equation and the implicit output made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(ranks):
        raise NotLowerable(f"Einsum {equation!r} names {len(inputs)} operands, got {len(ranks)}")
    spare = [c for c in SPARE_LETTERS if c not in eq]
    ellipsis_rank = max((r - len(s.replace("...", "")) for s, r in zip(inputs, ranks, strict=True)
                         if "..." in s), default=0)
    dots = "".join(spare[:ellipsis_rank])
    expanded = [s.replace("...", dots[ellipsis_rank - (r - len(s) + 3):]) if "..." in s else s
                for s, r in zip(inputs, ranks, strict=True)]
    for s, r in zip(expanded, ranks, strict=True):
        if len(s) != r:
            raise NotLowerable(f"Einsum {equation!r}: subscripts {s!r} for a rank-{r} operand")
    if arrow:
        out = rhs.replace("...", dots)
    else:  # implicit: the broadcast dims, then every index used once, alphabetically
        letters = "".join(expanded)
        out = dots + "".join(sorted(c for c in set(letters) if letters.count(c) == 1
                                    and c not in dots))
    return expanded, out


@dataclass(frozen=True)
class Operand:
    """A contiguous operand (or the output) as seen through its subscripts."""

    subs: str
    shape: tuple[int, ...]

    def stride(self, letter: str) -> int:
        """Element stride of `letter` (0 if absent or broadcast from size 1)."""
        if letter not in self.subs:
            return 0
        k = self.subs.index(letter)
        return 0 if self.shape[k] == 1 else math.prod(self.shape[k + 1:])


@dataclass(frozen=True)
class Merged:
    """One GEMM dimension: the letters merged into it, what is left to loop
    over, and its element stride in each tensor (A, B, output)."""

    loops: list[str]
    count: int
    strides: list[int]


def merge(letters: list[str], tensors: list[Operand], sizes: dict[str, int]) -> Merged:
    """Merge the innermost letters of a group (outer to inner order) while every
    tensor's strides allow."""
    letters = [c for c in letters if sizes[c] > 1]
    if not letters:
        return Merged([], 1, [0] * len(tensors))
    inner = letters[-1]
    count, strides = sizes[inner], [t.stride(inner) for t in tensors]
    rest = letters[:-1]
    while rest:
        c = rest[-1]
        if any(t.stride(c) != s * count for t, s in zip(tensors, strides, strict=True)):
            break
        count *= sizes[c]
        rest.pop()
    return Merged(rest, count, strides)


@dataclass(frozen=True)
class GemmGroups:
    """A two-operand contraction as GEMM calls: `order` says which input is A."""

    order: tuple[int, int]
    a: Operand
    b: Operand
    y: Operand
    batch: Merged
    m: Merged
    n: Merged
    k: Merged
    k_letters: list[str]
    n_letters: list[str]

    @property
    def loops(self) -> list[str]:
        return self.batch.loops + self.m.loops + self.n.loops


def gemm_groups(equation: str, subs: list[str], out: str, shapes: list[tuple[int, ...]],
                out_shape: tuple[int, ...]) -> GemmGroups:
    """The GEMM form of a two-operand equation without diagonals; NotLowerable
    with the reason when the strided GEMM cannot compute it."""
    a_subs, b_subs = subs
    for s in subs:
        if len(set(s)) != len(s):
            raise NotLowerable(f"Einsum {equation!r} takes a diagonal (repeated index in {s!r})")
    sizes = letter_sizes(subs, shapes)
    for c in a_subs + b_subs:
        if c not in out and (c not in a_subs or c not in b_subs):
            raise NotLowerable(f"Einsum {equation!r} sums index {c!r} of one operand only")
    innermost = next((c for c in reversed(out) if sizes[c] > 1), None)
    order = (0, 1)
    if innermost is not None and innermost in a_subs and innermost not in b_subs:
        order = (1, 0)  # the output's rows run along an index of A: swap the operands
    elif innermost is not None and innermost in a_subs:
        raise NotLowerable(f"Einsum {equation!r}: the output's innermost index {innermost!r} "
                           f"is a batch index")
    a, b = (Operand(subs[k], shapes[k]) for k in order)
    y = Operand(out, out_shape)
    batch = [c for c in out if c in a.subs and c in b.subs]
    m_group = [c for c in out if c in a.subs and c not in b.subs]
    n_group = [c for c in out if c in b.subs and c not in a.subs]
    k_group = sorted((c for c in a.subs if c not in out), key=a.stride, reverse=True)
    tensors = [a, b, y]
    g = GemmGroups(order, a, b, y, merge(batch, tensors, sizes), merge(m_group, tensors, sizes),
                   merge(n_group, tensors, sizes), merge(k_group, tensors, sizes), k_group,
                   n_group)
    if g.k.loops:
        raise NotLowerable(f"Einsum {equation!r}: the summed indices {k_group} are not "
                           f"adjacent in the same order in both operands")
    if g.n.count > 1 and g.n.strides[2] != 1:
        raise NotLowerable(f"Einsum {equation!r}: the output's N indices are not contiguous")
    calls = math.prod(sizes[c] for c in g.loops)
    if calls > MAX_CALLS:
        raise NotLowerable(f"Einsum {equation!r} would need {calls} GEMM calls")
    return g


def letter_sizes(subs: list[str], shapes: list[tuple[int, ...]]) -> dict[str, int]:
    """Each letter's size; a size-1 dim broadcasts against the others."""
    sizes: dict[str, int] = {}
    for s, shape in zip(subs, shapes, strict=True):
        for c, d in zip(s, shape, strict=True):
            sizes[c] = max(sizes.get(c, 1), d)
    return sizes
