"""tinyc's own int8 GEMM description (tinyc.lower.igemm.IntGemm, what the CPU
lowering of quantized ops builds, constants prepared) -> an engine job.

Reusing it means the engine computes exactly what the CPU path computes: the
same weight matrix, zero points, int32 bias and float32 requantization scales.
Two shapes occur: a constant A (weights, M = output channels) times a runtime
B (an image through im2col, or a strided matrix) as convolutions lower, and a
runtime A times a constant B as matrix products lower. The engine streams the
runtime operand through its input buffer and keeps the constant one in the
weight buffer, so the first shape is computed transposed.
"""

from __future__ import annotations

import numpy as np

from ..program import IntGemm, IntMatrix
from .jobs import ConvGeometry, GemmJob
from .layers import Unsupported


def job_from_int_gemm(name: str, gemm: IntGemm, source: str, dest: str) -> GemmJob:
    if gemm.a.const is not None and gemm.b.const is None:
        return _weights_first(name, gemm, source, dest)
    if gemm.a.const is None and gemm.b.const is not None:
        return _weights_second(name, gemm, source, dest)
    raise Unsupported("the engine multiplies a runtime tensor by constant weights")


def _weights_first(name: str, g: IntGemm, source: str, dest: str) -> GemmJob:
    """C[co, p] = W[co, k] . X[k, p]  ->  engine out[p, co] = X^T[p, k] . W^T[k, co]."""
    if g.b.im2col is not None:
        geometry = _geometry(g.b)
    elif (g.b.row_stride, g.b.col_stride) == (g.n, 1):  # pointwise: X[ci, pixel]
        geometry = ConvGeometry(g.k, 1, g.n, 1, 1, ho=1, wo=g.n)
    else:
        raise Unsupported("a runtime operand laid out with other strides")
    if g.ldc != g.n:
        raise Unsupported("an output with padded rows")
    return GemmJob(name, g.n, g.m, g.k, source, dest, np.ascontiguousarray(g.a.const.T),
                   g.b.dtype, _scalar(g.b.zero_point), _per(g.a.zero_point, g.m),
                   _bias(g, "row"), *_requant(g, "row"), batch=g.batch, geometry=geometry,
                   channels_first_out=True)


def _weights_second(name: str, g: IntGemm, source: str, dest: str) -> GemmJob:
    if (g.a.row_stride, g.a.col_stride) != (g.k, 1) or g.ldc != g.n or g.batch != 1:
        raise Unsupported("a runtime operand or output laid out with other strides")
    return GemmJob(name, g.m, g.n, g.k, source, dest, np.ascontiguousarray(g.b.const),
                   g.a.dtype, _scalar(g.a.zero_point), _per(g.b.zero_point, g.n),
                   _bias(g, "col"), *_requant(g, "col"))


def _geometry(b: IntMatrix) -> ConvGeometry:
    c = b.im2col
    return ConvGeometry(c.c, c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.dh, c.dw, c.ph, c.pw, c.ho, c.wo)


def _requant(g: IntGemm, engine_cols: str) -> tuple:
    """(scale per engine column, output zero point, output dtype)."""
    if g.requant is None:
        return None, 0, "int32"
    scale = np.asarray(g.requant.scale, np.float32).reshape(-1)
    n = g.m if engine_cols == "row" else g.n
    if scale.size not in (1, n) or (scale.size > 1 and g.requant.axis != engine_cols):
        raise Unsupported("requantization scales along the streamed dimension")
    return (np.ascontiguousarray(np.broadcast_to(scale, (n,))), int(g.requant.zero_point),
            g.requant.dtype)


def _bias(g: IntGemm, engine_cols: str) -> np.ndarray | None:
    if g.bias is None:
        return None
    if g.bias_axis != engine_cols:
        raise Unsupported("a bias along the streamed dimension")
    return _per(g.bias, g.m if engine_cols == "row" else g.n)


def _scalar(zero_point) -> int:
    arr = np.asarray(zero_point).reshape(-1)
    if arr.size != 1 and np.any(arr != arr[0]):
        raise Unsupported("per-row zero points of the streamed operand")
    return int(arr[0])


def _per(values, n: int) -> np.ndarray:
    arr = np.asarray(values, np.int64).reshape(-1)
    return np.ascontiguousarray(np.broadcast_to(arr, (n,)).astype(np.int32))
