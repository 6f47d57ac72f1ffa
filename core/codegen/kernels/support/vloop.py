"""Vector loop building blocks shared by the non-GEMM kernels.

A vector loop walks `n` elements `lanes` at a time and finishes with one
masked step instead of a scalar remainder loop, so every kernel body is
written once, for vectors. On AVX-512 the masked step is a plain k-masked
load/store; on targets without masking LLVM expands it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import llvmlite.ir as ir

from ... import llvm_util as U

# body(builder, element index, count): count is None for a full vector, else the
# number of valid lanes (an i64 in [1, lanes)) of the final, partial step.
VectorBody = Callable[[ir.IRBuilder, ir.Value, ir.Value | None], None]


def define_kernel(module: ir.Module, name: str, params: list[ir.Type],
                  arg_names: list[str]) -> tuple[ir.Function, ir.IRBuilder]:
    """A kernel function (see llvm_util.define), kept out of line: one model calls a
    kernel from many nodes, and inlining each call site multiplies LLVM's work
    (a densenet121 compiled 4x slower) for no measurable gain."""
    fn, b = U.define(module, name, params, arg_names)
    fn.attributes.add("noinline")
    return fn, b


def vector_loop(b: ir.IRBuilder, n: ir.Value, lanes: int, body: VectorBody,
                name: str = "v") -> None:
    """Run `body` on [0, n) in steps of `lanes`, the last partial step masked."""
    full = b.and_(n, U.i64(-lanes), name=f"{name}.full")  # lanes is a power of two
    with U.for_range(b, U.i64(0), full, step=lanes, name=name) as i:
        body(b, i, None)
    with b.if_then(b.icmp_signed("<", full, n)):
        body(b, full, b.sub(n, full, name=f"{name}.rest"))


def tail_mask(b: ir.IRBuilder, count: ir.Value, lanes: int) -> ir.Value:
    """<lanes x i1>, true for the first `count` lanes (count in [0, lanes])."""
    iota = ir.Constant(U.vec(U.I32, lanes), list(range(lanes)))
    c32 = b.trunc(count, U.I32) if count.type != U.I32 else count
    return b.icmp_signed("<", iota, U.splat(b, c32, lanes))


def _masked_intrinsic(b: ir.IRBuilder, kind: str, vt: ir.VectorType) -> ir.Function:
    mt = U.vec(U.I1, vt.count)
    suffix = f"v{vt.count}{_elem_suffix(vt.element)}.p0"
    if kind == "load":
        return U.intrinsic(b.module, f"llvm.masked.load.{suffix}", vt, [U.PTR, U.I32, mt, vt])
    return U.intrinsic(b.module, f"llvm.masked.store.{suffix}", U.VOID, [vt, U.PTR, U.I32, mt])


def _elem_suffix(t: ir.Type) -> str:
    return "f32" if t == U.F32 else "f64" if t == U.F64 else f"i{t.width}"


def vload(b: ir.IRBuilder, base: ir.Value, index: ir.Value, lanes: int,
          count: ir.Value | None = None, elem: ir.Type = U.F32,
          fill: float | int = 0) -> ir.Value:
    """lanes elements at base[index]; with `count`, only the first count lanes are
    read from memory and the others are `fill`."""
    if count is None:
        return U.load_vec(b, base, index, lanes, elem)
    return masked_vload(b, U.gep(b, base, index, elem), tail_mask(b, count, lanes), elem, fill)


def masked_vload(b: ir.IRBuilder, address: ir.Value, mask: ir.Value, elem: ir.Type = U.F32,
                 fill: float | int = 0) -> ir.Value:
    """Lanes of `mask` read from address[j]; the others are `fill` and touch no memory
    (so `address` may point before a buffer, if formed without 'inbounds')."""
    vt = U.vec(elem, mask.type.count)
    fn = _masked_intrinsic(b, "load", vt)
    align = ir.Constant(U.I32, U.elem_size(elem))
    return b.call(fn, [address, align, mask, ir.Constant(vt, [fill] * vt.count)])


def vstore(b: ir.IRBuilder, value: ir.Value, base: ir.Value, index: ir.Value,
           count: ir.Value | None = None) -> None:
    """Store a vector at base[index]; with `count`, only its first count lanes."""
    if count is None:
        U.store_vec(b, value, base, index)
        return
    masked_vstore(b, value, U.gep(b, base, index, value.type.element),
                  tail_mask(b, count, value.type.count))


def masked_vstore(b: ir.IRBuilder, value: ir.Value, address: ir.Value, mask: ir.Value) -> None:
    """Store the lanes of `mask` at address[j]; the others touch no memory."""
    fn = _masked_intrinsic(b, "store", value.type)
    align = ir.Constant(U.I32, U.elem_size(value.type.element))
    b.call(fn, [value, address, align, mask])


def reduce(b: ir.IRBuilder, kind: str, v: ir.Value) -> ir.Value:
    """Horizontal 'fadd' (reassociated into a tree) or 'fmax' of a float vector;
    fmax allows -inf lanes (see max_nnan)."""
    vt = v.type
    name = f"llvm.vector.reduce.{kind}.v{vt.count}f32"
    if kind == "fadd":
        fn = U.intrinsic(b.module, name, U.F32, [U.F32, vt])
        return b.call(fn, [U.f32(-0.0), v], fastmath=U.FAST)
    fn = U.intrinsic(b.module, name, U.F32, [vt])
    return b.call(fn, [v], fastmath=("nnan",))


@contextlib.contextmanager
def nested_loops(b: ir.IRBuilder, counts: Sequence[ir.Value],
                 name: str = "d") -> Iterator[list[ir.Value]]:
    """for i0 < counts[0]: for i1 < counts[1]: ...; yields [i0, i1, ...]."""
    with contextlib.ExitStack() as stack:
        idx = [stack.enter_context(U.for_range(b, U.i64(0), c, name=f"{name}{k}"))
               for k, c in enumerate(counts)]
        yield idx


def like(t: ir.Type, value: float) -> ir.Constant:
    """A float constant of type t, splatted when t is a vector."""
    if isinstance(t, ir.VectorType):
        return ir.Constant(t, [value] * t.count)
    return ir.Constant(t, value)


def int_like(t: ir.Type, value: int, width: int = 32) -> ir.Constant:
    """An integer constant shaped like the float type t (iN, or <n x iN>)."""
    it = ir.IntType(width)
    if isinstance(t, ir.VectorType):
        return ir.Constant(U.vec(it, t.count), [value] * t.count)
    return ir.Constant(it, value)


def int_type_like(t: ir.Type, width: int = 32) -> ir.Type:
    it = ir.IntType(width)
    return U.vec(it, t.count) if isinstance(t, ir.VectorType) else it


def max_nnan(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """maxnum promising no NaNs but allowing infinities: one vmaxps, and a -inf
    identity element (the full 'fast' set would make -inf operands poison)."""
    return _minmax_nnan(b, "maxnum", x, y)


def min_nnan(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _minmax_nnan(b, "minnum", x, y)


def _minmax_nnan(b: ir.IRBuilder, which: str, x: ir.Value, y: ir.Value) -> ir.Value:
    return U.minmax(b, which, x, y, ("nnan",))


def entry_alloca(b: ir.IRBuilder, t: ir.Type, name: str = "") -> ir.Value:
    """A stack slot in the entry block, where mem2reg turns it into SSA values:
    the easy way to carry an accumulator across a main loop and its masked tail."""
    with b.goto_entry_block():
        return b.alloca(t, name=name)


FoldStep = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def fold(b: ir.IRBuilder, stop: ir.Value, init: ir.Value, step: FoldStep,
         start: ir.Value | int = 0) -> ir.Value:
    """acc = init; for t in [start, stop): acc = step(b, t, acc); the final acc."""
    pre = b.block
    with U.for_range(b, start, stop, name="t") as t:
        acc_in = b.phi(init.type, name="acc")
        acc_in.add_incoming(init, pre)
        acc_out = step(b, t, acc_in)
        acc_in.add_incoming(acc_out, b.block)
        body_end = b.block
    result = b.phi(init.type, name="folded")
    result.add_incoming(init, pre)
    result.add_incoming(acc_out, body_end)
    return result
