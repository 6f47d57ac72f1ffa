"""Lowering of Einsum onto the shared GEMM, reading the operands in place through
strides (no transposes).

Every index of a two-operand equation is one of:

    batch     in A, B and the output          b in "bij,bjk->bik"
    M         in A and the output only        i
    N         in B and the output only        k
    K         in A and B only (summed)        j

Each group's indices are merged into one GEMM dimension wherever the strides of
every operand allow (adjacent in memory, in the same order); indices of the
batch, M and N groups that do not merge become loops of separate GEMM calls, one
remaining batch index is the GEMM kernel's own batch loop. The output's
innermost index must be an N index, since the GEMM writes rows of N; when it is
an M index, A and B swap roles. A constant B without batch indices (a weight)
is packed at compile time.

One-operand equations that only permute are strided copies (of any dtype). Diagonals
("ii->i"), sums over an index of one operand, an innermost batch index in the
output and more than two operands are not lowerable; the reason names the
equation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.gemm.gemm import GemmSpec, choose_blocking, default_tile, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.pack import pack_b_const
from ..errors import NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .elementwise import require_f32, shape_of
from .misc import copy_call, transpose_plan
from .registry import lowers

MAX_CALLS = 4096  # GEMM calls one node may unroll into
F32_BYTES = 4


def parse_equation(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """(subscripts per input, output subscripts), with '...' expanded to letters
    that do not occur in the equation and the implicit output made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(ranks):
        raise NotLowerable(f"Einsum {equation!r} names {len(inputs)} operands, got {len(ranks)}")
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in eq]
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
class _Tensor:
    """A contiguous operand (or the output) as seen through its subscripts."""

    subs: str
    shape: tuple[int, ...]

    def stride(self, letter: str) -> int:
        """Element stride of `letter` (0 if absent or broadcast from size 1)."""
        if letter not in self.subs:
            return 0
        k = self.subs.index(letter)
        return 0 if self.shape[k] == 1 else math.prod(self.shape[k + 1:])


def _merge(letters: list[str], tensors: list[_Tensor],
           sizes: dict[str, int]) -> tuple[list[str], int, list[int]]:
    """Merge the innermost letters of a group (outer to inner order) while every
    tensor's strides allow. Returns (letters left over, merged count, merged stride
    per tensor)."""
    letters = [c for c in letters if sizes[c] > 1]
    if not letters:
        return [], 1, [0] * len(tensors)
    inner = letters[-1]
    count, strides = sizes[inner], [t.stride(inner) for t in tensors]
    rest = letters[:-1]
    while rest:
        c = rest[-1]
        if any(t.stride(c) != s * count for t, s in zip(tensors, strides, strict=True)):
            break
        count *= sizes[c]
        rest.pop()
    return rest, count, strides


@lowers("Einsum")
def lower_einsum(node: Node, ctx: LowerContext) -> LoweredNode:
    equation = str(node.attr("equation"))
    shapes = [shape_of(ctx, x) for x in node.inputs]
    subs, out_subs = parse_equation(equation, [len(s) for s in shapes])
    if len(subs) > 2:
        raise NotLowerable(f"Einsum {equation!r} has {len(subs)} operands, at most 2 lower")
    for s in subs:
        if len(set(s)) != len(s):
            raise NotLowerable(f"Einsum {equation!r} takes a diagonal (repeated index in {s!r})")
    sizes: dict[str, int] = {}
    for s, shape in zip(subs, shapes, strict=True):
        for c, d in zip(s, shape, strict=True):
            sizes[c] = max(sizes.get(c, 1), d)
    if len(subs) == 1:
        return _permute(node, ctx, equation, subs[0], out_subs, shapes[0])
    require_f32(node, ctx)
    return _contract(node, ctx, equation, subs, out_subs, shapes, sizes)


def _permute(node: Node, ctx: LowerContext, equation: str, subs: str, out: str,
             shape: tuple[int, ...]) -> LoweredNode:
    if sorted(subs) != sorted(out):
        raise NotLowerable(f"Einsum {equation!r} sums over an index (a reduction)")
    perm = [subs.index(c) for c in out]
    x, y = node.inputs[0], node.outputs[0]
    sem = f"y[{','.join(out)}] = x[{','.join(subs)}]"
    if perm == sorted(perm):
        return LoweredNode(node.name, node.op, node.outputs, alias_of=x, semantics=sem)
    plan = transpose_plan(shape, perm)
    (n, inner_stride, _), outer = plan[-1], plan[:-1]
    nbytes = ctx.graph.type_of(x).dtype.itemsize  # any dtype: the copy moves raw bits
    if nbytes not in (1, 2, 4, 8):
        raise NotLowerable(f"{x}: no copy kernel for {nbytes}-byte elements")
    call = copy_call(nbytes, Buf(x), Buf(y), outer, n, inner_stride, f"{node.name}.plan")
    return LoweredNode(node.name, node.op, node.outputs, [call], semantics=sem,
                       note=f"{call.kernel.name}: a permutation as a strided copy")


def _contract(node: Node, ctx: LowerContext, equation: str, subs: list[str], out: str,
              shapes: list[tuple[int, ...]], sizes: dict[str, int]) -> LoweredNode:
    a_subs, b_subs = subs
    for c in a_subs + b_subs:
        if c not in out and (c not in a_subs or c not in b_subs):
            raise NotLowerable(f"Einsum {equation!r} sums index {c!r} of one operand only")
    innermost = next((c for c in reversed(out) if sizes[c] > 1), None)
    order = [0, 1]
    if innermost is not None and innermost in a_subs and innermost not in b_subs:
        order = [1, 0]  # the output's rows run along an index of A: swap the operands
    elif innermost is not None and innermost in a_subs:
        raise NotLowerable(f"Einsum {equation!r}: the output's innermost index {innermost!r} "
                           f"is a batch index")
    names = [node.inputs[k] for k in order]
    a, b = (_Tensor(subs[k], shapes[k]) for k in order)
    y = _Tensor(out, shape_of(ctx, node.outputs[0]))
    batch = [c for c in out if c in a.subs and c in b.subs]
    m_group = [c for c in out if c in a.subs and c not in b.subs]
    n_group = [c for c in out if c in b.subs and c not in a.subs]
    k_group = sorted((c for c in a.subs if c not in out), key=a.stride, reverse=True)
    loops_m, m, (sam, _, sym) = _merge(m_group, [a, b, y], sizes)
    loops_n, n, (_, sbn, syn) = _merge(n_group, [a, b, y], sizes)
    loops_k, k, (sak, sbk, _) = _merge(k_group, [a, b, y], sizes)
    loops_b, nb, (sab, sbb, syb) = _merge(batch, [a, b, y], sizes)
    if loops_k:
        raise NotLowerable(f"Einsum {equation!r}: the summed indices {k_group} are not "
                           f"adjacent in the same order in both operands")
    if n > 1 and syn != 1:
        raise NotLowerable(f"Einsum {equation!r}: the output's N indices are not contiguous")
    loops = loops_b + loops_m + loops_n
    calls_count = math.prod(sizes[c] for c in loops)
    if calls_count > MAX_CALLS:
        raise NotLowerable(f"Einsum {equation!r} would need {calls_count} GEMM calls")
    lanes = ctx.target.f32_lanes
    mr, nv = default_tile(lanes, m)
    b_const = ctx.graph.is_const(names[1]) and all(b.stride(c) == 0 for c in loops + batch)
    spec = GemmSpec(mr, nv, lanes, "strided", "packed" if b_const else "strided", Epilogue())
    blk = choose_blocking(spec, m, n, k)
    tag = node.name or node.outputs[0]
    values: dict[str, object] = dict(
        M=m, N=n, K=k, ldc=sym if m > 1 else n, kc=blk.kc, mc=blk.mc, nc=blk.nc,
        batch=nb, a_bstride=sab, b_bstride=0 if b_const else sbb, c_bstride=syb,
        sam=sam, sak=sak, scratch=Scratch(f"{tag}.pack", scratch_bytes(spec, blk)))
    b_arg: Buf | Const | None = None
    if b_const:
        b_arg = Const(f"{tag}.b.packed", pack_b_const(_b_matrix(ctx, names[1], b, k_group,
                                                                n_group, sizes), spec.nr))
    else:
        values.update(sbk=sbk, sbn=sbn)
    calls = []
    for idx in np.ndindex(*[sizes[c] for c in loops]):
        def offset(t: _Tensor, idx: tuple[int, ...] = idx) -> int:
            return F32_BYTES * sum(i * t.stride(c) for i, c in zip(idx, loops, strict=True))

        values.update(a=Buf(names[0], offset(a)), c=Buf(node.outputs[0], offset(y)),
                      b=b_arg if b_const else Buf(names[1], offset(b)))
        calls.append(Call(spec.kernel(), spec.args(values)))
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[{','.join(out)}] += A[{','.join(a_subs)}] * "
                                 f"B[{','.join(b_subs)}]",
                       note=f"{spec.name}: M={m} N={n} K={k}, batch {nb}, {len(calls)} call(s)"
                            + (", B packed at compile time" if b_const else ""))


def _b_matrix(ctx: LowerContext, name: str, b: _Tensor, k_group: list[str], n_group: list[str],
              sizes: dict[str, int]) -> np.ndarray:
    """A constant B as the [K, N] matrix the GEMM reads. B's other axes all have
    size 1 here, and its K/N axes of size 1 broadcast."""
    ks = [c for c in k_group if sizes[c] > 1]
    ns = [c for c in n_group if sizes[c] > 1]
    kept = [c for c in b.subs if c in ks or c in ns]
    data = np.asarray(ctx.graph.const(name), np.float32)
    data = data.reshape([b.shape[b.subs.index(c)] for c in kept])
    full = np.broadcast_to(data, [sizes[c] for c in kept])
    mat = np.transpose(full, [kept.index(c) for c in ks + ns])
    return np.ascontiguousarray(mat.reshape(math.prod(sizes[c] for c in ks),
                                            math.prod(sizes[c] for c in ns)))
