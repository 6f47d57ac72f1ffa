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

from ..program import IntGemm, IntGemmLowering, LowerContext


def int_gemm_calls(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
    """The calls computing `gemm` on ctx's target; `tag` names constants and scratch."""
    if ctx.int_gemm_planner is not None:
        return ctx.int_gemm_planner(ctx, gemm, tag)
    from ..tensorize.int_gemm import plan_int_gemm  # the tensorizer chooses the kernel

    return plan_int_gemm(ctx, gemm, tag)
