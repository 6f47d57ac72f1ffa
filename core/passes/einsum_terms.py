"""Building blocks of the Einsum decomposition (decompose_einsum.py): a Term is
one intermediate tensor named by its subscripts, and TermBuilder writes the
standard ONNX nodes (Transpose, Reshape, Slice, Unsqueeze, Mul, ReduceSum,
Einsum) that turn terms into new terms, with their types.

Sizes are ints or, for symbolic dims at this stage, the dim's name; nodes whose
attributes would need a number (a diagonal's Slice step) refuse a named size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from ..ir import DType, Node, TensorType
from .rewrite import GraphView

Dim = int | str

ONNX_ELEM_TYPE = {DType.float32: TensorProto.FLOAT, DType.float16: TensorProto.FLOAT16,
                  DType.bfloat16: TensorProto.BFLOAT16}

# ReduceSum and Unsqueeze take their axes as an input from this opset on, an attribute before
AXES_AS_INPUT = 13


class NoDecomposition(Exception):  # noqa: N818  (an internal signal: leave the node as it is)
    """The decomposition needs a number where the graph has a named size."""


@dataclass(frozen=True)
class Term:
    """A value and the letter of each of its axes (no letter twice once the
    diagonals are taken)."""

    name: str
    subs: str
    shape: tuple[Dim, ...]

    def dim(self, letter: str) -> Dim:
        return self.shape[self.subs.index(letter)]


def broadcast_dim(a: Dim, b: Dim) -> Dim:
    """The size of a letter two terms share: a size 1 broadcasts (an ellipsis)."""
    if a == 1:
        return b
    return a


class TermBuilder:
    """Collects the nodes, types and constants that replace one Einsum node."""

    def __init__(self, view: GraphView, node: Node, dtype: DType, opset: int):
        self.view, self.node, self.dtype, self.opset = view, node, dtype, opset
        self.base = node.name or node.outputs[0]
        self.nodes: list[Node] = []
        self.types: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}

    # -- plumbing
    def _value(self, hint: str, shape: tuple[Dim, ...], dtype: DType | None = None) -> str:
        name = self.view.fresh(f"{self.base}/einsum_{hint}")
        self.types[name] = TensorType(dtype or self.dtype, tuple(shape))
        return name

    def _const(self, values: list[int]) -> str:
        array = np.asarray(values, np.int64)
        name = self._value("const", array.shape, DType.int64)
        self.constants[name] = array
        return name

    def _emit(self, op: str, inputs: list[str], hint: str, subs: str, shape: tuple[Dim, ...],
              out: str | None = None, **attrs) -> Term:
        name = out or self._value(hint, shape)
        self.nodes.append(Node(op, tuple(inputs), (name,), attrs,
                               name=self.view.fresh(f"{self.base}/einsum_{op}")))
        return Term(name, subs, shape)

    def _axes(self, axes: list[int]) -> tuple[list[str], dict]:
        """ReduceSum's / Unsqueeze's axes, as the graph's opset wants them."""
        if self.opset >= AXES_AS_INPUT:
            return [self._const(axes)], {}
        return [], {"axes": axes}

    # -- terms
    def transpose(self, t: Term, subs: str, out: str | None = None) -> Term:
        """`t` with its axes in the order of `subs` (a permutation of t.subs)."""
        if subs == t.subs and out is None:
            return t
        if subs == t.subs:  # the output is the input, or a value already computed
            return self._emit("Identity", [t.name], "id", t.subs, t.shape, out=out)
        perm = [t.subs.index(c) for c in subs]
        return self._emit("Transpose", [t.name], "t", subs, tuple(t.shape[p] for p in perm),
                          out=out, perm=perm)

    def diagonal(self, t: Term, letter: str) -> Term:
        """The diagonal of the first two axes named `letter`: those axes moved last,
        merged into one of n*n, then every (n+1)-th element of it. Slice clamps to
        the axis, so nothing is read out of bounds."""
        p = t.subs.index(letter)
        q = t.subs.index(letter, p + 1)
        n = t.shape[p]
        if not isinstance(n, int):
            raise NoDecomposition(f"the diagonal of {letter!r} has a named size {n!r}")
        keep = [k for k in range(len(t.subs)) if k not in (p, q)]
        others = "".join(t.subs[k] for k in keep)
        moved = t
        if keep + [p, q] != list(range(len(t.subs))):
            moved = self._emit("Transpose", [t.name], "t", others + letter + letter,
                               tuple(t.shape[k] for k in keep) + (n, n), perm=keep + [p, q])
        lead = moved.shape[:-2]
        flat = self._emit("Reshape", [moved.name, self._const([0] * len(lead) + [n * n])],
                          "flat", others + letter, lead + (n * n,))
        axis = len(lead)
        return self._emit("Slice", [flat.name, self._const([0]), self._const([n * n]),
                                    self._const([axis]), self._const([n + 1])],
                          "diag", others + letter, lead + (n,))

    def cast(self, t: Term, dtype: DType, out: str | None = None) -> Term:
        """`t` converted to `dtype`; later terms are of that dtype."""
        name = out or self._value("cast", t.shape, dtype)
        self.nodes.append(Node("Cast", (t.name,), (name,), {"to": ONNX_ELEM_TYPE[dtype]},
                               name=self.view.fresh(f"{self.base}/einsum_Cast")))
        self.dtype = dtype
        return Term(name, t.subs, t.shape)

    def finish(self, t: Term, subs: str, y: str | None) -> Term:
        """`t` in the order of `subs`, written to the node's output `y` if given:
        the node that computed t writes y itself when no transpose is left to do."""
        last = self.nodes[-1] if self.nodes else None
        if y is None or t.subs != subs or last is None or last.outputs != (t.name,):
            return self.transpose(t, subs, out=y)
        self.nodes[-1] = last.with_(outputs=(y,))
        del self.types[t.name]
        return Term(y, t.subs, t.shape)

    def reduce(self, t: Term, letters: str) -> Term:
        """`t` summed over `letters` (kept in order otherwise)."""
        if not letters:
            return t
        axes = [t.subs.index(c) for c in letters]
        keep = [k for k in range(len(t.subs)) if k not in axes]
        inputs, attrs = self._axes(axes)
        return self._emit("ReduceSum", [t.name, *inputs], "sum",
                          "".join(t.subs[k] for k in keep), tuple(t.shape[k] for k in keep),
                          keepdims=0, **attrs)

    def align(self, t: Term, order: str) -> Term:
        """`t` with an axis for every letter of `order` (size 1 where t has none),
        ready to broadcast against another term aligned the same way."""
        t = self.transpose(t, "".join(c for c in order if c in t.subs))
        missing = [k for k, c in enumerate(order) if c not in t.subs]
        if not missing:
            return t
        shape = tuple(t.dim(c) if c in t.subs else 1 for c in order)
        inputs, attrs = self._axes(missing)
        return self._emit("Unsqueeze", [t.name, *inputs], "u", order, shape, **attrs)

    def multiply(self, a: Term, b: Term) -> Term:
        """a * b for two terms aligned to the same order."""
        shape = tuple(broadcast_dim(x, y) for x, y in zip(a.shape, b.shape, strict=True))
        return self._emit("Mul", [a.name, b.name], "mul", a.subs, shape)

    def einsum(self, a: Term, b: Term, subs: str, shape: tuple[Dim, ...],
               out: str | None = None) -> Term:
        """A two-operand Einsum the GEMM lowering takes (the caller checked)."""
        return self._emit("Einsum", [a.name, b.name], "gemm", subs, shape, out=out,
                          equation=f"{a.subs},{b.subs}->{subs}")
