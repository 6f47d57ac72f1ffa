"""The int8 GEMM a quantized op lowers onto, described: operands, zero points,
bias, requantization, im2col geometry (see lower/igemm.py for the semantics).
Lowerings describe it; the tensorizer plans its kernels (tensorize/int_gemm.py);
an accelerator computes the same description (tinyc.plugin.int_gemms_of)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calls import Buf, Call

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
