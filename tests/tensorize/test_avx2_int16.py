"""x86-avx2's int8 GEMM on vpmaddwd (avx2_int16 YAML: bytes widened to int16,
products added to C): equal to the plain path bit for bit on odd shapes and on
the extreme values where a saturating instruction (vpmaddubsw) would go wrong."""

from __future__ import annotations

import numpy as np
import pytest
from test_int_gemm import avx2_context, requant_ref
from test_vnni_acceptance import MODELS

from tinyc.compiler import CompileOptions, compile_model
from tinyc.lower.igemm import int_gemm_calls
from tinyc.program import Buf, Im2col, IntGemm, IntMatrix, LowerContext, LoweredNode, Requant
from tinyc.testing.lowered_harness import run_node_calls

INTRINSIC = "avx2_int16.madd_8x2_i16i16i32"
EXTREMES = {"uint8": np.array([0, 255], np.uint8), "int8": np.array([-128, 127], np.int8)}
ZERO_POINTS = {"uint8": (0, 255), "int8": (-128, 127)}


def extremes(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """Only the two ends of the dtype's range (and some of each)."""
    return rng.choice(EXTREMES[dtype], shape)


def run_both(gemm: IntGemm, buffers: dict[str, np.ndarray], out: str) -> tuple:
    """The output on x86-avx2's vpmaddwd path and on the plain path, each run on
    its own copy of `buffers`."""
    results = []
    for sets in (None, ()):
        ctx = avx2_context()
        if sets is not None:
            ctx = LowerContext(None, ctx.target, sets)  # type: ignore[arg-type]
        plan = int_gemm_calls(ctx, gemm, "t")
        assert plan.intrinsic == (INTRINSIC if sets is None else ""), plan.note
        mine = {k: v.copy() for k, v in buffers.items()}
        run_node_calls([LoweredNode("t", "IGemm", ("c",), plan.calls)], mine, ctx.target)
        results.append(mine[out])
    return tuple(results)


@pytest.mark.parametrize("a_dt", ["uint8", "int8"])
@pytest.mark.parametrize("b_dt", ["uint8", "int8"])
@pytest.mark.parametrize("ends", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("const_b", [True, False])
def test_extreme_values_and_zero_points(a_dt: str, b_dt: str, ends, const_b: bool) -> None:
    """Values only at the ends of their range, zero points at either end: the
    largest products and pair sums there are (255 * -128 twice, K = 999)."""
    rng = np.random.default_rng(11)
    m, n, k = 7, 29, 999
    a, b = extremes(rng, (m, k), a_dt), extremes(rng, (k, n), b_dt)
    za, zb = ZERO_POINTS[a_dt][ends[0]], ZERO_POINTS[b_dt][ends[1]]
    bop = IntMatrix(b_dt, const=b, zero_point=zb) if const_b else \
        IntMatrix(b_dt, buf=Buf("b"), row_stride=n, col_stride=1, zero_point=zb)
    gemm = IntGemm(m, n, k, IntMatrix(a_dt, buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=za), bop, Buf("c"), n)
    fast, plain = run_both(gemm, {"a": a, "b": b, "c": np.zeros((m, n), np.int32)}, "c")
    want = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    np.testing.assert_array_equal(fast, want)
    np.testing.assert_array_equal(fast, plain)


def test_all_same_extreme_is_the_largest_sum() -> None:
    """255 - 0 times -128 - 127 in every product: the most negative sum there is."""
    m, n, k = 3, 17, 301
    a, b = np.full((m, k), 255, np.uint8), np.full((k, n), -128, np.int8)
    gemm = IntGemm(m, n, k, IntMatrix("uint8", buf=Buf("a"), row_stride=k, col_stride=1),
                   IntMatrix("int8", const=b, zero_point=127), Buf("c"), n)
    fast, plain = run_both(gemm, {"a": a, "c": np.zeros((m, n), np.int32)}, "c")
    np.testing.assert_array_equal(fast, np.full((m, n), 255 * -255 * k))
    np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("mnk", [(1, 1, 1), (5, 7, 3), (13, 33, 1), (6, 16, 2), (7, 17, 5),
                                 (19, 61, 127)])
def test_odd_shapes_per_channel_requantized(mnk) -> None:
    """Rows below and past the 6-row tile, columns past a vector, odd K (the
    k-step is 2: a zero-padded last step), per-column zero points and scales."""
    rng = np.random.default_rng(sum(mnk))
    m, n, k = mnk
    a, w = extremes(rng, (m, k), "int8"), rng.integers(0, 256, (k, n)).astype(np.uint8)
    zb = rng.choice([0, 255], n)
    scale = (rng.random(n) * 0.01 + 1e-4).astype(np.float32)
    bias = rng.integers(-9000, 9000, n).astype(np.int32)
    gemm = IntGemm(m, n, k, IntMatrix("int8", buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=127),
                   IntMatrix("uint8", const=w, zero_point=zb), Buf("c"), n, bias=bias,
                   requant=Requant(scale, 0, "uint8"))
    fast, plain = run_both(gemm, {"a": a, "c": np.zeros((m, n), np.uint8)}, "c")
    acc = (a.astype(np.int64) - 127) @ (w.astype(np.int64) - zb) + bias
    np.testing.assert_array_equal(fast, requant_ref(acc, scale, 0, "uint8"))
    np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("x_dt", ["uint8", "int8"])
def test_im2col_conv_at_extremes(x_dt: str) -> None:
    """A conv (weights A, image B through im2col, padded with the zero point at
    the end of the range) with an image of extremes: the packer widens it."""
    rng = np.random.default_rng(12)
    ci, h, w, co, kh, s, p = 3, 11, 13, 10, 3, 2, 1
    ho, wo = (h + 2 * p - kh) // s + 1, (w + 2 * p - kh) // s + 1
    x, wt = extremes(rng, (ci, h, w), x_dt), extremes(rng, (co, ci * kh * kh), "int8")
    zx = ZERO_POINTS[x_dt][1]
    geo = Im2col(ci, h, w, kh, kh, s, s, 1, 1, p, p, ho, wo)
    gemm = IntGemm(co, ho * wo, geo.k, IntMatrix("int8", const=wt, zero_point=-128),
                   IntMatrix(x_dt, buf=Buf("x"), zero_point=zx, im2col=geo), Buf("c"), ho * wo)
    fast, plain = run_both(gemm, {"x": x, "c": np.zeros((co, ho * wo), np.int32)}, "c")
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (p, p), (p, p)))
    cols = np.stack([xp[:, ky:ky + s * ho:s, kx:kx + s * wo:s]
                     for ky in range(kh) for kx in range(kh)], 1).reshape(geo.k, -1)
    np.testing.assert_array_equal(fast, (wt.astype(np.int64) + 128) @ cols)
    np.testing.assert_array_equal(fast, plain)


def test_report_names_vpmaddwd_for_x86_avx2() -> None:
    """The compile report: the chosen intrinsic, how the operands are fed, and why
    the fp32 step was not used."""
    art = compile_model(MODELS["qlinear_u8i8"](), "x86-avx2", CompileOptions())
    (gemm,) = [r for r in art.report if r["op"] == "QLinearMatMul"]
    assert gemm["intrinsic"] == INTRINSIC
    assert "A widened to int16 when packed" in gemm["note"]
    assert "B widened to int16 when packed" in gemm["note"]
    rejected = dict(gemm["rejected"])
    assert rejected["avx2_fma.fma_f32_1x8"].startswith("dtype: op is uint8 x int8 -> int32")


def test_only_targets_without_masked_byte_loads_split_them() -> None:
    """AVX2 has no masked byte load (LLVM would branch per lane): its packers load
    whole vectors plainly; AVX512-BW targets keep the one masked load."""
    from tinyc.target import resolve_device

    geo = Im2col(8, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 10, 10)
    gemm = IntGemm(16, 100, geo.k, IntMatrix("int8", const=np.ones((16, geo.k), np.int8)),
                   IntMatrix("uint8", buf=Buf("x"), im2col=geo), Buf("c"), 100)
    names = {}
    for target in ("x86-avx2", "x86-avx512-vnni"):
        device = resolve_device(target)
        ctx = LowerContext(None, device.cpu, device.intrinsics)  # type: ignore[arg-type]
        (call,) = int_gemm_calls(ctx, gemm, "t").calls
        names[target] = call.kernel.name
    assert "_sm_" in names["x86-avx2"] and "_sm_" not in names["x86-avx512-vnni"], names
