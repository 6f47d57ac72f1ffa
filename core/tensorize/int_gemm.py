"""Planning an int8 GEMM (lower/igemm.py's IntGemm) into kernel calls."""

from __future__ import annotations

import numpy as np

from ..codegen.kernels.igemm_plain import PlainIGemmSpec, plain_scratch_bytes
from ..codegen.kernels.int_epilogue import IntEpilogue
from ..lower.igemm import IntGemm, IntGemmLowering, IntMatrix
from ..lower.program import Const, Scratch
from ..lower.registry import LowerContext


def plan_int_gemm(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
    return _plain(gemm, tag)


def _plain(gemm: IntGemm, tag: str) -> IntGemmLowering:
    m, n, k = gemm.m, gemm.n, gemm.k
    epi = _epilogue(gemm)
    spec = PlainIGemmSpec(gemm.a.dtype == "int8", gemm.b.dtype == "int8",
                          "im2col" if gemm.b.im2col else "strided", epi)
    values: dict[str, object] = dict(
        c=gemm.c, scratch=Scratch(f"{tag}.igemm", plain_scratch_bytes(m, n, k)),
        za=Const(f"{tag}.za", _per(gemm.a.zero_point, m)),
        zb=Const(f"{tag}.zb", _per(gemm.b.zero_point, n)),
        M=m, N=n, K=k, ldc=gemm.ldc, batch=gemm.batch, a_bstride=gemm.a_bstride,
        b_bstride=gemm.b_bstride, c_bstride=gemm.c_bstride)
    values.update(_operand("a", gemm.a, tag, ("sam", "sak")))
    values.update(_operand("b", gemm.b, tag, ("sbk", "sbn")))
    values.update(_epilogue_values(gemm, epi, tag))
    note = "int8 GEMM, plain LLVM loops (no int8 intrinsic matched)"
    return IntGemmLowering([_call(spec, values)], note)


def _call(spec: PlainIGemmSpec, values: dict[str, object]):
    from ..lower.program import Call

    return Call(spec.kernel(), spec.args(values))


def _operand(role: str, op: IntMatrix, tag: str, strides: tuple[str, str]) -> dict[str, object]:
    if op.const is not None:
        data = np.ascontiguousarray(op.const.astype(np.dtype(op.dtype)))
        return {role: Const(f"{tag}.{role}", data), strides[0]: data.shape[1], strides[1]: 1}
    if op.im2col is not None:
        g = op.im2col
        return {role: op.buf, "H": g.h, "W": g.w, "kh": g.kh, "kw": g.kw, "sh": g.sh,
                "sw": g.sw, "dh": g.dh, "dw": g.dw, "ph": g.ph, "pw": g.pw, "Wo": g.wo}
    return {role: op.buf, strides[0]: op.row_stride, strides[1]: op.col_stride}


def _epilogue(gemm: IntGemm) -> IntEpilogue:
    bias = gemm.bias_axis if gemm.bias is not None else "none"
    if gemm.requant is None:
        return IntEpilogue(bias)
    return IntEpilogue(bias, gemm.requant.dtype, gemm.requant.axis)


def _epilogue_values(gemm: IntGemm, epi: IntEpilogue, tag: str) -> dict[str, object]:
    out: dict[str, object] = {}
    if gemm.bias is not None:
        size = gemm.m if epi.bias == "row" else gemm.n
        out["bias"] = Const(f"{tag}.bias", _per(gemm.bias, size))
    if gemm.requant is not None:
        size = gemm.m if epi.scale == "row" else gemm.n
        scale = np.broadcast_to(np.asarray(gemm.requant.scale, np.float32), (size,))
        out.update(scale=Const(f"{tag}.scale", np.ascontiguousarray(scale)),
                   yzp=int(gemm.requant.zero_point))
    return out


def _per(values: int | np.ndarray, size: int) -> np.ndarray:
    """A scalar or (size,) array as a contiguous int32 array of `size`."""
    arr = np.asarray(values, np.int64).reshape(-1)
    return np.ascontiguousarray(np.broadcast_to(arr, (size,)).astype(np.int32))
