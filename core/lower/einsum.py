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

float64 and integer contractions take the same grouping and strides into a
scalar strided kernel (codegen/kernels/ops/contract.py). One-operand equations
that only permute are strided copies (of any dtype). Diagonals
("ii->i"), sums over an index of one operand, an innermost batch index in the
output, more than two operands and float16 are not lowerable here; the
reason names the equation. The default pipeline's decompose_einsum pass rewrites
those into other ops (and GEMM-shaped Einsums) before lowering; both ask
program/einsum.py's `gemm_groups` which equations this lowering takes.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.gemm.gemm import GemmSpec, choose_blocking, default_tile, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.pack import pack_b_const
from ..codegen.kernels.ops.contract import contract_kernel
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from ..program.einsum import (
    TYPED_CONTRACTION,
    Operand,
    gemm_groups,
    letter_sizes,
    parse_equation,
)
from .elementwise import require_f32, shape_of
from .misc import copy_call, transpose_plan
from .registry import lowers

F32_BYTES = 4


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
    if len(subs) == 1:
        return _permute(node, ctx, equation, subs[0], out_subs, shapes[0])
    dtype = ctx.graph.type_of(node.outputs[0]).dtype
    if dtype in TYPED_CONTRACTION:
        return _contract_typed(node, ctx, equation, subs, out_subs, shapes, dtype)
    require_f32(node, ctx)
    return _contract(node, ctx, equation, subs, out_subs, shapes)


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
              shapes: list[tuple[int, ...]]) -> LoweredNode:
    g = gemm_groups(equation, subs, out, shapes, shape_of(ctx, node.outputs[0]))
    sizes = letter_sizes(subs, shapes)
    a_subs, b_subs = subs
    names = [node.inputs[k] for k in g.order]
    a, b, y, loops = g.a, g.b, g.y, g.loops
    m, n, k, nb = g.m.count, g.n.count, g.k.count, g.batch.count
    sam, sym = g.m.strides[0], g.m.strides[2]
    sbn = g.n.strides[1]
    sak, sbk = g.k.strides[0], g.k.strides[1]
    sab, sbb, syb = g.batch.strides
    batch = [c for c in out if c in a.subs and c in b.subs]
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
        b_arg = Const(f"{tag}.b.packed", pack_b_const(_b_matrix(ctx, names[1], b, g.k_letters,
                                                                g.n_letters, sizes), spec.nr))
    else:
        values.update(sbk=sbk, sbn=sbn)
    calls = []
    for idx in np.ndindex(*[sizes[c] for c in loops]):
        def offset(t: Operand, idx: tuple[int, ...] = idx) -> int:
            return F32_BYTES * sum(i * t.stride(c) for i, c in zip(idx, loops, strict=True))

        values.update(a=Buf(names[0], offset(a)), c=Buf(node.outputs[0], offset(y)),
                      b=b_arg if b_const else Buf(names[1], offset(b)))
        calls.append(Call(spec.kernel(), spec.args(values)))
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[{','.join(out)}] += A[{','.join(a_subs)}] * "
                                 f"B[{','.join(b_subs)}]",
                       note=f"{spec.name}: M={m} N={n} K={k}, batch {nb}, {len(calls)} call(s)"
                            + (", B packed at compile time" if b_const else ""))


def _b_matrix(ctx: LowerContext, name: str, b: Operand, k_group: list[str], n_group: list[str],
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


def _contract_typed(node: Node, ctx: LowerContext, equation: str, subs: list[str], out: str,
                    shapes: list[tuple[int, ...]], dtype: DType) -> LoweredNode:
    """float64 and integer contractions: the GEMM's grouping and strides, computed
    by the scalar strided kernel (one call per loop index, as the GEMM's)."""
    g = gemm_groups(equation, subs, out, shapes, shape_of(ctx, node.outputs[0]))
    sizes = letter_sizes(subs, shapes)
    names = [node.inputs[k] for k in g.order]
    kernel, nbytes = contract_kernel(dtype), dtype.itemsize
    strides = (g.batch.strides[0], g.m.strides[0], g.k.strides[0], g.batch.strides[1],
               g.k.strides[1], g.n.strides[1], g.batch.strides[2], g.m.strides[2])
    calls = []
    for idx in np.ndindex(*[sizes[c] for c in g.loops]):
        def offset(t: Operand, idx: tuple[int, ...] = idx) -> int:
            return nbytes * sum(i * t.stride(c) for i, c in zip(idx, g.loops, strict=True))

        calls.append(Call(kernel, (Buf(names[0], offset(g.a)), Buf(names[1], offset(g.b)),
                                   Buf(node.outputs[0], offset(g.y)), g.batch.count,
                                   g.m.count, g.n.count, g.k.count, *strides)))
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[{','.join(out)}] += A[{','.join(subs[0])}] * "
                                 f"B[{','.join(subs[1])}]",
                       note=f"{kernel.name}: M={g.m.count} N={g.n.count} K={g.k.count}, "
                            f"batch {g.batch.count}, {len(calls)} call(s), scalar strided")
