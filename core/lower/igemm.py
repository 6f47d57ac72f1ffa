"""The int8 GEMM that quantized ops lower onto (QLinearMatMul, MatMulInteger,
QLinearConv, ConvInteger, QDQ patterns):

    C[m, n] = sum_k (A[m, k] - za[m]) * (B[k, n] - zb[n])            int32, exact
    then optionally   + bias[m or n]   and   requantize(C)

How to call it: describe the problem with IntGemm and call `int_gemm_calls`; you
get the kernel Calls for one LoweredNode plus a note for the compile report.

- Every dtype pair is supported: uint8/int8 for A and for B, in any combination.
  The tensorizer maps each onto the u8 x i8 dot products of the target (VNNI's
  vpdpbusd) by flipping sign bits (x ^ 0x80 turns an int8 into x + 128 as
  uint8) and moving the shift into the zero point, which is exact; the zero
  points are then removed with row and column sums (see tensorize/int_gemm.py).
- Zero points are compile-time constants: a scalar, or one per row of A (M,) /
  per column of B (N,) (per output channel weights).
- A constant operand (weights) is given as its logical matrix (A: M x K, B:
  K x N, as numpy) and is packed at compile time; a runtime operand is a Buf
  read through element strides. B may also be the im2col view of an NCHW
  image (one group of a conv): pass `im2col=Im2col(...)` with the image's Buf.
- Outputs: int32 (ldc elements between rows), or with `requant` the 8-bit
  value  saturate(round_half_even(float(C + bias) * scale) + zero_point),
  onnxruntime's MlasRequantizeOutput (scale per tensor, per row or per column).
- `batch` repeats the GEMM with element strides per item (0: shared operand).

Which intrinsic and tile were chosen (or why none matched) is in the note; pass
`intrinsic` and `rejected` on to the LoweredNode for the compile report.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..errors import NotLowerable
from ..ir import Graph, Node
from ..program import IntGemm, IntGemmLowering, LowerContext
from ..target.machine import CpuTarget
from .registry import lowering_for

# set while int_gemms_of runs a lowering: the GEMMs it describes are collected, not planned
_described: ContextVar[list[IntGemm] | None] = ContextVar("tinyc_described_gemms", default=None)

# the constants a lowering prepares for its GEMMs do not depend on the CPU it lowers for
_ANY_CPU = CpuTarget("x86_64-unknown-linux-gnu", "generic", "", 128)


def int_gemm_calls(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
    """The calls computing `gemm` on ctx's target; `tag` names constants and scratch."""
    described = _described.get()
    if described is not None:
        described.append(gemm)
        return IntGemmLowering([], "described for an accelerator")
    from ..tensorize.int_gemm import plan_int_gemm  # the tensorizer chooses the kernel

    return plan_int_gemm(ctx, gemm, tag)


def int_gemms_of(node: Node, graph: Graph) -> list[IntGemm] | None:
    """The int8 GEMMs tinyc's CPU lowering of `node` computes, described with the
    constants it prepares (weights as logical matrices, zero points, int32 bias, float32
    requantization scales, im2col geometry): an accelerator computing the same
    descriptions agrees with the CPU bit for bit. None when tinyc has no CPU
    lowering for the op; NotLowerable (with the reason) when it cannot lower it."""
    lower = lowering_for(node)
    if lower is None:
        return None
    gemms: list[IntGemm] = []
    token = _described.set(gemms)
    try:
        lower(node, LowerContext(graph, _ANY_CPU))
    finally:
        _described.reset(token)
    return gemms


__all__ = ["NotLowerable", "int_gemm_calls", "int_gemms_of"]
