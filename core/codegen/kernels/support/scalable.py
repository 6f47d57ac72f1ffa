"""Scalable vectors (RVV's and SVE's <vscale x N x T>) at the edges of a
micro-kernel built with fixed vectors.

llvmlite's IRBuilder has no scalable vector type; the IR reaches LLVM as text,
so a type that prints as one is all it takes. The micro-kernels keep their
fixed-width arithmetic: an operand is built as the fixed vector of its tile and
inserted into the scalable register (llvm.vector.insert), an accumulator is
read back by llvm.vector.extract. The tile's lanes are what a register holds
at the spec's vector length (vscale = VLEN / 64 on RISC-V), the vector-length
operand of the intrinsic asks for exactly them, so the code is correct on any
longer vector too (the extra lanes are left alone).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ...llvm_util import I64, intrinsic


class ScalableVectorType(ir.Type):
    """<vscale x count x element>."""

    def __init__(self, element: ir.Type, count: int):
        self.element, self.count = element, count

    def _to_string(self) -> str:
        return f"<vscale x {self.count} x {self.element}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScalableVectorType) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def mangled(self) -> str:
        return f"nxv{self.count}{_element_suffix(self.element)}"


def _element_suffix(t: ir.Type) -> str:
    return f"i{t.width}" if isinstance(t, ir.IntType) else \
        {"float": "f32", "double": "f64", "half": "f16"}[str(t)]


def fixed_of(t: ScalableVectorType, vscale: int) -> ir.VectorType:
    """The fixed vector of the lanes a register holds at the spec's vector length."""
    return ir.VectorType(t.element, t.count * vscale)


def to_scalable(b: ir.IRBuilder, value: ir.Value, t: ScalableVectorType) -> ir.Value:
    """A fixed vector as the low lanes of a scalable one (the rest undefined)."""
    name = f"llvm.vector.insert.{t.mangled}.v{value.type.count}{_element_suffix(t.element)}"
    fn = intrinsic(b.module, name, t, [t, value.type, I64])
    return b.call(fn, [ir.Constant(t, ir.Undefined), value, ir.Constant(I64, 0)])


def to_fixed(b: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """The low `lanes` lanes of a scalable vector."""
    t = value.type
    fixed = ir.VectorType(t.element, lanes)
    name = f"llvm.vector.extract.v{lanes}{_element_suffix(t.element)}.{t.mangled}"
    fn = intrinsic(b.module, name, fixed, [t, I64])
    return b.call(fn, [value, ir.Constant(I64, 0)])
