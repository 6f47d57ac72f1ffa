"""Static shapes and numpy broadcasting plans shared by the elementwise lowerings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import NotLowerable
from ..ir.symbolic import SymDim, broadcast_shapes, is_one, same  # noqa: F401 (re-exported)
from ..program import LowerContext


def shape_of(ctx: LowerContext, name: str) -> tuple[int, ...]:
    t = ctx.graph.type_of(name)
    if not t.is_static:
        raise NotLowerable(f"{name} has a symbolic shape {t}")
    return tuple(d if isinstance(d, SymDim) else int(d) for d in t.shape)


def broadcast_output(ctx: LowerContext, inputs: Sequence[str], y: str) -> tuple[int, ...]:
    """y's shape, checked to be the broadcast of the inputs' shapes: kernels trust
    the types, so a wrongly inferred one must stop here, not overrun a buffer."""
    out = shape_of(ctx, y)
    shapes = [shape_of(ctx, x) for x in inputs]
    try:
        expected = broadcast_shapes(*shapes)
    except ValueError:
        raise NotLowerable(f"input shapes {shapes} do not broadcast") from None
    if expected != out:
        raise NotLowerable(f"{y} has shape {list(out)}, but its inputs broadcast to "
                           f"{list(expected)}")
    return out


def same_shape(a, b) -> bool:
    """Equal shapes for every size (no guard: "not known equal" is False)."""
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))


def same_dim(a: object, b: object) -> bool:
    """Equal dims, where a literal 1 against a symbol counts as broadcast (not
    equal): reading it broadcast is right whatever the symbol's value."""
    if (is_one(a) and isinstance(b, SymDim)) or (is_one(b) and isinstance(a, SymDim)):
        return False
    return a == b


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def broadcast_strides(shape: Sequence[int], out: Sequence[int]) -> list[int]:
    """Element strides of a contiguous `shape` read as `out` (0 where broadcast)."""
    shape = [1] * (len(out) - len(shape)) + list(shape)
    strides = contiguous_strides(shape)
    return [0 if is_one(s) and not is_one(o) else st
            for s, o, st in zip(shape, out, strides, strict=True)]


@dataclass(frozen=True)
class NaryPlan:
    """op(x_0, ..., x_{k-1}) -> y as outer dims (count, one stride per operand, y
    stride) around one contiguous inner dim where each operand is a vector ('v')
    or a scalar ('s')."""

    kinds: str
    inner: int
    outer: tuple[tuple[int, ...], ...]

    @property
    def numel(self) -> int:
        return self.inner * math.prod(d[0] for d in self.outer)


def nary_plan(out: Sequence[int], shapes: Sequence[Sequence[int]]) -> NaryPlan:
    """Numpy broadcasting of every shape to `out`, with size-1 dims dropped and
    adjacent dims merged wherever all operands walk them the same way."""
    strides = [broadcast_strides(s, out) for s in shapes] + [contiguous_strides(out)]
    dims: list[list[int]] = []  # [count, strides...], outer to inner
    for k, count in enumerate(out):
        if is_one(count):
            continue
        d = [count] + [st[k] for st in strides]
        if dims and all(same(dims[-1][j], d[j] * count) for j in range(1, len(d))):
            dims[-1] = [dims[-1][0] * count, *d[1:]]
        else:
            dims.append(d)
    if not dims:
        dims = [[1] + [0] * len(strides)]
    inner = dims[-1]
    kinds = "".join("v" if s == 1 else "s" for s in inner[1:-1])
    return NaryPlan(kinds, inner[0], tuple(tuple(d) for d in dims[:-1]))


def index_expr(shape: Sequence[int], out: Sequence[int]) -> str:
    """How a broadcast operand is indexed by the output's i0, i1, ..., for reports."""
    lead = len(out) - len(shape)
    return ",".join("0" if is_one(d) and not is_one(out[lead + k]) else f"i{lead + k}"
                    for k, d in enumerate(shape))
