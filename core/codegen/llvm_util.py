"""Small helpers over llvmlite's IRBuilder, in the spirit of numba's cgutils.

Kernels are written with these so that loops, vector types and fast-math flags
look the same everywhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import llvmlite.ir as ir

from ..errors import TargetError

F32 = ir.FloatType()
F64 = ir.DoubleType()
I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

# 'fast' lets LLVM contract mul+add into FMA, reassociate reductions and
# vectorize them; model outputs are checked against references with tolerances.
FAST = ("fast",)


def vec(elem: ir.Type, n: int) -> ir.VectorType:
    return ir.VectorType(elem, n)


def i64(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def f32(v: float) -> ir.Constant:
    return ir.Constant(F32, v)


def splat(b: ir.IRBuilder, value: ir.Value, n: int) -> ir.Value:
    """Broadcast a scalar to an n-lane vector (insertelement + shufflevector)."""
    vt = vec(value.type, n)
    one = b.insert_element(ir.Constant(vt, ir.Undefined), value, ir.Constant(I32, 0))
    mask = ir.Constant(vec(I32, n), [0] * n)
    return b.shuffle_vector(one, ir.Constant(vt, ir.Undefined), mask)


def const_vec(elem: ir.Type, value: float | int, n: int) -> ir.Constant:
    return ir.Constant(vec(elem, n), [value] * n)


def _fast(inst: ir.Instruction) -> ir.Instruction:
    inst.flags.extend(FAST)
    return inst


def fadd(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _fast(b.fadd(x, y))


def fsub(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _fast(b.fsub(x, y))


def fmul(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _fast(b.fmul(x, y))


def fdiv(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return _fast(b.fdiv(x, y))


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """Declare (once) an LLVM intrinsic such as llvm.fma.v16f32."""
    if name in module.globals:
        return module.globals[name]
    return ir.Function(module, ir.FunctionType(ret, args), name=name)


def _suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    if t == F32:
        return "f32"
    if t == F64:
        return "f64"
    if isinstance(t, ir.IntType):
        return f"i{t.width}"
    raise TypeError(f"no intrinsic suffix for {t}")


def fma(b: ir.IRBuilder, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    """x * y + z, fused: one vfmadd on targets with FMA."""
    fn = intrinsic(b.module, f"llvm.fma.{_suffix(x.type)}", x.type, [x.type] * 3)
    return b.call(fn, [x, y, z])


def fmax(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """max(x, y) for code that never sees NaNs ('fast')."""
    return minmax(b, "maxnum", x, y, FAST)


def smin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """The smaller of two signed integers."""
    return b.select(b.icmp_signed("<", x, y), x, y)


def fmin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return minmax(b, "minnum", x, y, FAST)


def arch(module: ir.Module) -> str:
    """The architecture of the module's triple ('x86_64', 'thumbv7em', 'wasm32'...)."""
    return (module.triple or "").split("-")[0]


def minmax(b: ir.IRBuilder, which: str, x: ir.Value, y: ir.Value,
           flags: tuple[str, ...] = ()) -> ir.Value:
    """llvm.<which>(x, y) for which in maxnum / minnum (a NaN operand gives the other)
    and maximum / minimum (NaN propagates, -0 < +0), lowered so that every target
    builds it without libcalls or LLVM crashes:
    - Arm M-profile (thumb): LLVM 22 aborts ("Unexpected illegal type") on
      maximum/minimum of doubles and halves, and makes vector maxnum a call to
      fmaxf per lane; compare and select is what the hardware runs anyway.
    - wasm: maxnum/minnum become fmaxf/fminf imports, while f32.max/f32.min are
      maximum/minimum; for the NaN-free ('nnan') callers both agree.
    """
    a = arch(b.module)
    if a.startswith(("thumb", "arm")):
        return _minmax_select(b, which, x, y, flags)
    if a.startswith("wasm") and which in ("maxnum", "minnum"):
        if "nnan" not in flags and "fast" not in flags:
            return _minmax_select(b, which, x, y, flags)
        which = "maximum" if which == "maxnum" else "minimum"
    fn = intrinsic(b.module, f"llvm.{which}.{_suffix(x.type)}", x.type, [x.type] * 2)
    return b.call(fn, [x, y], fastmath=flags)


def _minmax_select(b: ir.IRBuilder, which: str, x: ir.Value, y: ir.Value,
                   flags: tuple[str, ...]) -> ir.Value:
    """minmax as compares and selects (vectors of doubles one lane at a time)."""
    t = x.type
    if isinstance(t, ir.VectorType) and t.element == F64:
        r = ir.Constant(t, ir.Undefined)
        for k in range(t.count):
            lane = ir.Constant(I32, k)
            one = _minmax_select(b, which, b.extract_element(x, lane),
                                 b.extract_element(y, lane), flags)
            r = b.insert_element(r, one, lane)
        return r
    larger = which in ("maxnum", "maximum")
    r = b.select(b.fcmp_ordered(">" if larger else "<", x, y, flags=flags), x, y)
    if which in ("maxnum", "minnum"):
        return b.select(b.fcmp_unordered("uno", y, y, flags=flags), x, r)
    # equal operands differ only as -0 and +0: max ands the sign bits, min ors them
    it = _int_like(t)
    bits = (b.and_ if larger else b.or_)(b.bitcast(x, it), b.bitcast(y, it))
    r = b.select(b.fcmp_ordered("==", x, y, flags=flags), b.bitcast(bits, t), r)
    return b.select(b.fcmp_unordered("uno", x, y, flags=flags), b.fadd(x, y), r)


def is_nan(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """x != x per lane. On Arm M-profile from the bits: the Cortex-M55 code LLVM 22
    emits for an unordered compare of MVE vectors finds no NaN (IsNaN was all false)."""
    if not arch(b.module).startswith(("thumb", "arm")):
        return b.fcmp_unordered("uno", x, x)
    it = _int_like(x.type)
    width = (it.element if isinstance(it, ir.VectorType) else it).width
    exponent = {64: 0x7FF << 52, 32: 0x7F800000, 16: 0x7C00}[width]
    magnitude = b.and_(b.bitcast(x, it), _int_const(it, (1 << (width - 1)) - 1))
    return b.icmp_unsigned(">", magnitude, _int_const(it, exponent))


def _int_const(t: ir.Type, v: int) -> ir.Constant:
    return ir.Constant(t, [v] * t.count) if isinstance(t, ir.VectorType) else ir.Constant(t, v)


def _int_like(t: ir.Type) -> ir.Type:
    """The integer type of t's width (per lane for vectors)."""
    if isinstance(t, ir.VectorType):
        return ir.VectorType(_int_like(t.element), t.count)
    return ir.IntType({F64: 64, F32: 32}.get(t, 16))


def gep(b: ir.IRBuilder, base: ir.Value, index: ir.Value, elem: ir.Type = F32) -> ir.Value:
    """Address of base[index] for elements of type elem."""
    return b.gep(base, [index], inbounds=True, source_etype=elem)


def load(b: ir.IRBuilder, base: ir.Value, index: ir.Value, elem: ir.Type = F32,
         align: int | None = None) -> ir.Value:
    return b.load(gep(b, base, index, elem), typ=elem, align=align)


def store(b: ir.IRBuilder, value: ir.Value, base: ir.Value, index: ir.Value,
          align: int | None = None) -> None:
    b.store(value, gep(b, base, index, value.type), align=align)


def load_vec(b: ir.IRBuilder, base: ir.Value, index: ir.Value, n: int,
             elem: ir.Type = F32) -> ir.Value:
    """Unaligned load of n elements starting at base[index] (index in elements)."""
    return b.load(gep(b, base, index, elem), typ=vec(elem, n), align=elem_size(elem))


def store_vec(b: ir.IRBuilder, value: ir.Value, base: ir.Value, index: ir.Value) -> None:
    elem = value.type.element
    b.store(value, gep(b, base, index, elem), align=elem_size(elem))


def elem_size(t: ir.Type) -> int:
    if isinstance(t, ir.IntType):
        return max(1, t.width // 8)
    return {F32: 4, F64: 8}.get(t, 4) if not isinstance(t, ir.HalfType) else 2


@contextlib.contextmanager
def for_range(b: ir.IRBuilder, start: ir.Value | int, stop: ir.Value | int,
              step: int = 1, name: str = "i") -> Iterator[ir.Value]:
    """`for (i = start; i < stop; i += step)`; the body is built inside the with-block.

    The loop is bottom-tested behind an entry guard, the shape LLVM's loop
    passes (vectorizer, unroller) recognise best.
    """
    start = i64(start) if isinstance(start, int) else start
    stop = i64(stop) if isinstance(stop, int) else stop
    pre = b.block
    body = b.append_basic_block(f"{name}.body")
    end = b.append_basic_block(f"{name}.end")
    b.cbranch(b.icmp_signed("<", start, stop), body, end)
    b.position_at_end(body)
    idx = b.phi(I64, name=name)
    idx.add_incoming(start, pre)
    yield idx
    nxt = b.add(idx, i64(step), name=f"{name}.next", flags=("nsw",))
    idx.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, stop), body, end)
    b.position_at_end(end)


def define(module: ir.Module, name: str, params: list[ir.Type],
           arg_names: list[str] | None = None, ret: ir.Type = VOID,
           noalias: bool = False) -> tuple[ir.Function, ir.IRBuilder]:
    """Create a function and a builder at its entry.

    noalias=True promises that no two pointer arguments overlap, which frees
    the vectorizer from runtime alias checks; only kernels whose callers never
    pass overlapping buffers may set it.
    """
    fn = ir.Function(module, ir.FunctionType(ret, params), name=name)
    for i, a in enumerate(fn.args):
        if arg_names:
            a.name = arg_names[i]
        if noalias and isinstance(a.type, ir.PointerType):
            a.add_attribute("noalias")
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    return fn, b


# What LLVM 22 cannot select for a target: instead of reporting an error it aborts
# the whole process ("Unexpected illegal type") or loops forever. Found by
# compiling each intrinsic and type alone per target. The kernels avoid these
# (minmax; dtype_ir widens float16 by integer operations on wasm), and this check
# of the optimized IR turns one that slips through into an error.
UNSELECTABLE = (
    (("thumb", "arm"), re.compile(r"@llvm\.(?:maximum|minimum)\.(?:v\d+)?f(?:16|64)\b"),
     "IEEE maximum / minimum of doubles or halves"),
    (("wasm",), re.compile(r"fcmp [a-z ]*<\d+ x half>"), "a compare of half-precision vectors"),
)


def check_selectable(ir_text: Callable[[], str], triple: str) -> None:
    """Raise TargetError if the module uses what LLVM would crash on for triple;
    ir_text is only called (printing the module) for targets with such constructs."""
    arch_name = triple.split("-")[0]
    rules = [(p, what) for prefixes, p, what in UNSELECTABLE if arch_name.startswith(prefixes)]
    if not rules:
        return
    text = ir_text()
    for pattern, what in rules:
        found = pattern.search(text)
        if found:
            raise TargetError(f"the generated code uses {what} ('{found.group(0)}'), which "
                              f"LLVM cannot compile for {triple} (it would abort the process); "
                              "this is a tinyc kernel bug, please report it")
