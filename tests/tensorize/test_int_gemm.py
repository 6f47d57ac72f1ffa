"""The int8 GEMM API (lower/igemm.py) against numpy, on every path the target allows."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.lower.igemm import Im2col, IntGemm, IntMatrix, Requant, int_gemm_calls
from tinyc.lower.program import Buf, LoweredNode
from tinyc.lower.registry import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_node_calls

RANGES = {"uint8": (0, 256), "int8": (-128, 128)}


def rand_int8(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    lo, hi = RANGES[dtype]
    return rng.integers(lo, hi, shape).astype(dtype)


def run_gemm(gemm: IntGemm, buffers: dict[str, np.ndarray], ctx: LowerContext) -> str:
    plan = int_gemm_calls(ctx, gemm, "t")
    run_node_calls([LoweredNode("t", "IGemm", ("c",), plan.calls)], buffers, ctx.target)
    return plan.note


def requant_ref(acc: np.ndarray, scale: np.ndarray, zp: int, dtype: str) -> np.ndarray:
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    x = acc.astype(np.float32) * scale.astype(np.float32)
    x = np.clip(x, np.float32(lo - zp), np.float32(hi - zp))
    return (np.rint(x).astype(np.int32) + zp).astype(dtype)


def plain_ctx() -> LowerContext:
    return LowerContext(None, host_target(), ())  # type: ignore[arg-type]


@pytest.mark.parametrize("a_dt", ["uint8", "int8"])
@pytest.mark.parametrize("b_dt", ["uint8", "int8"])
@pytest.mark.parametrize("const_b", [True, False])
def test_matmul_all_dtype_pairs(a_dt: str, b_dt: str, const_b: bool) -> None:
    rng = np.random.default_rng(1)
    m, n, k = 13, 37, 29
    a, b = rand_int8(rng, (m, k), a_dt), rand_int8(rng, (k, n), b_dt)
    za, zb = int(rng.integers(*RANGES[a_dt])), rng.integers(*RANGES[b_dt], n)
    bop = IntMatrix(b_dt, const=b, zero_point=zb) if const_b else \
        IntMatrix(b_dt, buf=Buf("b"), row_stride=n, col_stride=1, zero_point=zb)
    gemm = IntGemm(m, n, k, IntMatrix(a_dt, buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=za), bop, Buf("c"), n)
    c = np.zeros((m, n), np.int32)
    run_gemm(gemm, {"a": a, "b": b, "c": c}, plain_ctx())
    want = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    np.testing.assert_array_equal(c, want)


def test_requant_bias_and_batch() -> None:
    rng = np.random.default_rng(2)
    m, n, k, batch = 5, 19, 40, 3
    a = rand_int8(rng, (batch, m, k), "uint8")
    w = rand_int8(rng, (k, n), "int8")
    bias = rng.integers(-5000, 5000, n).astype(np.int32)
    scale = (rng.random(n) * 0.01).astype(np.float32)
    gemm = IntGemm(m, n, k, IntMatrix("uint8", buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=7),
                   IntMatrix("int8", const=w, zero_point=0), Buf("c"), n, bias=bias,
                   requant=Requant(scale, 3, "uint8"), batch=batch, a_bstride=m * k,
                   c_bstride=m * n)
    c = np.zeros((batch, m, n), np.uint8)
    run_gemm(gemm, {"a": a, "c": c}, plain_ctx())
    acc = (a.astype(np.int32) - 7) @ w.astype(np.int32) + bias
    np.testing.assert_array_equal(c, requant_ref(acc, scale, 3, "uint8"))


def test_im2col_conv_with_row_bias() -> None:
    rng = np.random.default_rng(3)
    ci, h, w, co, kh, kw, s, p = 3, 9, 11, 6, 3, 3, 2, 1
    ho, wo = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    x = rand_int8(rng, (ci, h, w), "uint8")
    wt = rand_int8(rng, (co, ci * kh * kw), "int8")
    zx, zw = 100, rng.integers(-3, 3, co)
    geo = Im2col(ci, h, w, kh, kw, s, s, 1, 1, p, p, ho, wo)
    bias = rng.integers(-100, 100, co).astype(np.int32)
    gemm = IntGemm(co, ho * wo, geo.k, IntMatrix("int8", const=wt, zero_point=zw),
                   IntMatrix("uint8", buf=Buf("x"), zero_point=zx, im2col=geo), Buf("c"),
                   ho * wo, bias=bias, bias_axis="row")
    c = np.zeros((co, ho * wo), np.int32)
    run_gemm(gemm, {"x": x, "c": c}, plain_ctx())
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (p, p), (p, p)))
    cols = np.stack([xp[:, ky:ky + s * ho:s, kx:kx + s * wo:s]
                     for ky in range(kh) for kx in range(kw)], 1).reshape(ci * kh * kw, -1)
    want = (wt.astype(np.int64) - zw[:, None]) @ cols + bias[:, None]
    np.testing.assert_array_equal(c, want)
