"""A matched intrinsic as the MicroStep the micro-kernels emit."""

from __future__ import annotations

from ..codegen.kernels.gemm.micro_step import MicroStep, StepOperand
from .match import BITS, Match


def micro_step(mt: Match) -> MicroStep:
    operands = tuple(StepOperand(o.role, o.type.text, o.const) for o in mt.operands)
    return MicroStep(mt.name, mt.intrinsic.emit.code, operands, mt.returns.text,
                     mt.tile["n"], mt.tile["k"], BITS[mt.dtype("A")], BITS[mt.dtype("B")],
                     mt.b_order if len(mt.b_order) == 2 else ("k", "n"), mt.adds,
                     mt.tile["m"], max(1, mt.vscale))
