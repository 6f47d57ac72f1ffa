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

from dataclasses import dataclass

import numpy as np

from .program import Buf, Call
from .registry import LowerContext

INT8_DTYPES = ("uint8", "int8")


@dataclass(frozen=True)
class Im2col:
    """The geometry of one conv group: B[k, p] = X[ci, y*sh + ky*dh - ph, x*sw + kx*dw - pw]
    with k = (ci, ky, kx) row-major and p = y*wo + x; zero (the zero point) outside."""

    c: int  # input channels of the group
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    ph: int
    pw: int
    ho: int
    wo: int

    @property
    def k(self) -> int:
        return self.c * self.kh * self.kw

    @property
    def pixels(self) -> int:
        return self.ho * self.wo


@dataclass(frozen=True)
class IntMatrix:
    """One int8 operand: a compile-time matrix (`const`, the logical matrix) or a
    runtime tensor (`buf`, element (r, c) at r*row_stride + c*col_stride, or the
    image of an im2col view)."""

    dtype: str  # "uint8" or "int8"
    const: np.ndarray | None = None
    buf: Buf | None = None
    row_stride: int = 0
    col_stride: int = 0
    zero_point: int | np.ndarray = 0  # scalar, or per row of A / per column of B
    im2col: Im2col | None = None  # B only

    def __post_init__(self) -> None:
        if self.dtype not in INT8_DTYPES:
            raise ValueError(f"int8 GEMM operands are uint8 or int8, not {self.dtype}")
        if (self.const is None) == (self.buf is None):
            raise ValueError("give exactly one of const and buf")


@dataclass(frozen=True)
class Requant:
    """8-bit output: saturate(round_half_even(float(acc) * scale) + zero_point)."""

    scale: np.ndarray  # float32: shape () per tensor, (M,) per row or (N,) per column
    zero_point: int
    dtype: str  # "uint8" or "int8"
    axis: str = "col"  # which GEMM dimension a (M,) / (N,) scale runs along: "row" or "col"


@dataclass(frozen=True)
class IntGemm:
    m: int
    n: int
    k: int
    a: IntMatrix
    b: IntMatrix
    c: Buf  # int32 (or requant.dtype) output, element (m, n) at m*ldc + n
    ldc: int
    bias: np.ndarray | None = None  # int32, added before requantizing
    bias_axis: str = "col"  # "row": one per m (conv output channel), "col": one per n
    requant: Requant | None = None
    batch: int = 1
    a_bstride: int = 0  # elements between batch items (0: the same operand for all)
    b_bstride: int = 0
    c_bstride: int = 0


@dataclass(frozen=True)
class IntGemmLowering:
    calls: list[Call]
    note: str  # chosen intrinsic, tile and packing, for LoweredNode.note
    choice: object = None  # tensorize.select.Choice: what the tensorizer decided

    @property
    def intrinsic(self) -> str:
        """The intrinsic used ("set.name"), for LoweredNode.intrinsic; "" if none."""
        match = getattr(self.choice, "match", None)
        return match.name if match is not None else ""

    @property
    def rejected(self) -> tuple[tuple[str, str], ...]:
        """(intrinsic, why not used), for LoweredNode.rejected."""
        return tuple(getattr(self.choice, "rejected", ()))


def int_gemm_calls(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
    """The calls computing `gemm` on ctx's target; `tag` names constants and scratch."""
    if ctx.int_gemm_planner is not None:
        return ctx.int_gemm_planner(ctx, gemm, tag)
    from ..tensorize.int_gemm import plan_int_gemm  # the tensorizer chooses the kernel

    return plan_int_gemm(ctx, gemm, tag)
