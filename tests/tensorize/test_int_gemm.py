"""The int8 GEMM API (lower/igemm.py) against numpy, on every path the target allows."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.lower.igemm import int_gemm_calls
from tinyc.program import Buf, Im2col, IntGemm, IntMatrix, LowerContext, LoweredNode, Requant
from tinyc.target.targets import resolve_device
from tinyc.tensorize.sets import sets_for_features
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_node_calls

RANGES = {"uint8": (0, 256), "int8": (-128, 128)}


def rand_int8(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    lo, hi = RANGES[dtype]
    return rng.integers(lo, hi, shape).astype(dtype)


def run_gemm(gemm: IntGemm, buffers: dict[str, np.ndarray],
             ctx: tuple[LowerContext, str], any_vnni: bool = False) -> str:
    """Run; the plan must use ctx's intrinsic (any VNNI one: small shapes may rank
    the narrower first)."""
    context, expected = ctx
    plan = int_gemm_calls(context, gemm, "t")
    if any_vnni and "vnni" in expected:
        assert "vnni" in plan.intrinsic, plan.note
    else:
        assert plan.intrinsic == expected, plan.note
    run_node_calls([LoweredNode("t", "IGemm", ("c",), plan.calls)], buffers, context.target)
    return plan.note


def requant_ref(acc: np.ndarray, scale: np.ndarray, zp: int, dtype: str) -> np.ndarray:
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    x = acc.astype(np.float32) * scale.astype(np.float32)
    x = np.clip(x, np.float32(lo - zp), np.float32(hi - zp))
    return (np.rint(x).astype(np.int32) + zp).astype(dtype)


PATHS = {"plain": (512, None), "vnni512": (512, "avx512_vnni.dot_16x4_u8i8i32"),
         "vnni256": (256, "avx_vnni.dot_8x4_u8i8i32"),
         "avx2": ("x86-avx2", "avx2_int16.madd_8x2_i16i16i32"),
         "avx512": ("x86-avx512", "avx512_int16.madd_16x2_i16i16i32")}
NEEDS = {"x86-avx2": "+avx2", "x86-avx512": "+avx512bw"}


def avx2_context(spec: str = "x86-avx2") -> LowerContext:
    """Compiled for a spec without VNNI (x86-avx2: haswell, x86-avx512:
    skylake-avx512), run on this host."""
    if NEEDS[spec] not in host_target().features.split(","):
        pytest.skip(f"this CPU lacks {NEEDS[spec]}")
    device = resolve_device(spec)
    return LowerContext(None, device.cpu, device.intrinsics)  # type: ignore[arg-type]


@pytest.fixture(params=sorted(PATHS))
def ctx(request) -> tuple[LowerContext, str]:
    """(context, the intrinsic it must pick): the plain path, each VNNI one and
    x86-avx2's vpmaddwd."""
    bits, intrinsic = PATHS[request.param]
    if isinstance(bits, str):
        return avx2_context(bits), intrinsic
    target = host_target(bits)
    sets = sets_for_features(target) if intrinsic else ()
    if intrinsic and intrinsic.split(".")[0] not in {s.name for s in sets}:
        pytest.skip(f"this CPU lacks {intrinsic}")
    return LowerContext(None, target, sets), intrinsic or ""  # type: ignore[arg-type]


@pytest.mark.parametrize("a_dt", ["uint8", "int8"])
@pytest.mark.parametrize("b_dt", ["uint8", "int8"])
@pytest.mark.parametrize("const_b", [True, False])
def test_matmul_all_dtype_pairs(ctx, a_dt: str, b_dt: str, const_b: bool) -> None:
    rng = np.random.default_rng(1)
    m, n, k = 13, 37, 29
    a, b = rand_int8(rng, (m, k), a_dt), rand_int8(rng, (k, n), b_dt)
    za, zb = int(rng.integers(*RANGES[a_dt])), rng.integers(*RANGES[b_dt], n)
    bop = IntMatrix(b_dt, const=b, zero_point=zb) if const_b else \
        IntMatrix(b_dt, buf=Buf("b"), row_stride=n, col_stride=1, zero_point=zb)
    gemm = IntGemm(m, n, k, IntMatrix(a_dt, buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=za), bop, Buf("c"), n)
    c = np.zeros((m, n), np.int32)
    run_gemm(gemm, {"a": a, "b": b, "c": c}, ctx)
    want = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    np.testing.assert_array_equal(c, want)


def test_requant_bias_and_batch(ctx) -> None:
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
    run_gemm(gemm, {"a": a, "c": c}, ctx)
    acc = (a.astype(np.int32) - 7) @ w.astype(np.int32) + bias
    np.testing.assert_array_equal(c, requant_ref(acc, scale, 3, "uint8"))


def test_im2col_conv_with_row_bias(ctx) -> None:
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
    run_gemm(gemm, {"x": x, "c": c}, ctx)
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (p, p), (p, p)))
    cols = np.stack([xp[:, ky:ky + s * ho:s, kx:kx + s * wo:s]
                     for ky in range(kh) for kx in range(kw)], 1).reshape(ci * kh * kw, -1)
    want = (wt.astype(np.int64) - zw[:, None]) @ cols + bias[:, None]
    np.testing.assert_array_equal(c, want)


def test_blocks_edges_and_per_channel_zero_points(ctx) -> None:
    """M and N cross MC/NC blocks, K is no multiple of 4, A constant with per-row
    zero points, B runtime and transposed (strided reads) with per-column ones."""
    rng = np.random.default_rng(4)
    m, n, k = 390, 700, 1501
    a = rand_int8(rng, (m, k), "int8")
    b_t = rand_int8(rng, (n, k), "uint8")  # B = b_t.T, read with strides (1, k)
    za, zb = rng.integers(-128, 128, m), rng.integers(0, 256, n)
    gemm = IntGemm(m, n, k, IntMatrix("int8", const=a, zero_point=za),
                   IntMatrix("uint8", buf=Buf("b"), row_stride=1, col_stride=k, zero_point=zb),
                   Buf("c"), n)
    c = np.zeros((m, n), np.int32)
    run_gemm(gemm, {"b": b_t, "c": c}, ctx)
    want = (a.astype(np.int64) - za[:, None]) @ (b_t.T.astype(np.int64) - zb)
    np.testing.assert_array_equal(c, want)


@pytest.mark.parametrize("out", ["int8", "uint8"])
def test_strided_dilated_conv_requantized_per_channel(ctx, out: str) -> None:
    rng = np.random.default_rng(5)
    ci, h, w, co, kh, kw, s, d, p = 5, 20, 23, 19, 3, 3, 2, 2, 2
    ho, wo = (h + 2 * p - d * (kh - 1) - 1) // s + 1, (w + 2 * p - d * (kw - 1) - 1) // s + 1
    x = rand_int8(rng, (2, ci, h, w), "int8")
    wt = rand_int8(rng, (co, ci * kh * kw), "int8")
    zx = -3
    geo = Im2col(ci, h, w, kh, kw, s, s, d, d, p, p, ho, wo)
    scale = (rng.random(co) * 0.002 + 1e-4).astype(np.float32)
    gemm = IntGemm(co, ho * wo, geo.k, IntMatrix("int8", const=wt),
                   IntMatrix("int8", buf=Buf("x"), zero_point=zx, im2col=geo), Buf("c"),
                   ho * wo, requant=Requant(scale, 5, out, axis="row"), batch=2,
                   b_bstride=ci * h * w, c_bstride=co * ho * wo)
    c = np.zeros((2, co, ho * wo), out)
    run_gemm(gemm, {"x": x, "c": c}, ctx)
    for i in range(2):
        xp = np.pad(x[i].astype(np.int64) - zx, ((0, 0), (p, p), (p, p)))
        cols = np.stack([xp[:, d * ky:d * ky + s * ho:s, d * kx:d * kx + s * wo:s]
                         for ky in range(kh) for kx in range(kw)], 1).reshape(geo.k, -1)
        acc = wt.astype(np.int64) @ cols
        np.testing.assert_array_equal(c[i], requant_ref(acc, scale[:, None], 5, out))


@pytest.mark.parametrize(("hw", "stride", "pad", "dil"), [
    ((20, 35), 1, 1, 1), ((9, 9), 1, 0, 1), ((40, 40), 2, 1, 1), ((13, 17), 3, 1, 1),
    ((3, 3), 1, 1, 1), ((12, 30), 1, 2, 2)])
def test_im2col_load_modes(ctx, hw, stride, pad, dil) -> None:
    """Row runs (stride 1 and 2, 2 or 4 output rows per vector) and lane by lane."""
    rng = np.random.default_rng(6)
    (h, w), ci, co, kh = hw, 4, 10, 3
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    x = rand_int8(rng, (ci, h, w), "uint8")
    wt = rand_int8(rng, (co, ci * kh * kh), "int8")
    geo = Im2col(ci, h, w, kh, kh, stride, stride, dil, dil, pad, pad, ho, wo)
    gemm = IntGemm(co, ho * wo, geo.k, IntMatrix("int8", const=wt, zero_point=1),
                   IntMatrix("uint8", buf=Buf("x"), zero_point=77, im2col=geo), Buf("c"),
                   ho * wo)
    c = np.zeros((co, ho * wo), np.int32)
    run_gemm(gemm, {"x": x, "c": c}, ctx)
    xp = np.pad(x.astype(np.int64) - 77, ((0, 0), (pad, pad), (pad, pad)))
    cols = np.stack([xp[:, dil * ky:dil * ky + stride * ho:stride,
                        dil * kx:dil * kx + stride * wo:stride]
                     for ky in range(kh) for kx in range(kh)], 1).reshape(geo.k, -1)
    np.testing.assert_array_equal(c, (wt.astype(np.int64) - 1) @ cols)


def test_pointwise_conv_reads_channel_rows(ctx) -> None:
    rng = np.random.default_rng(7)
    ci, h, w, co = 24, 7, 9, 33
    x = rand_int8(rng, (ci, h, w), "uint8")
    wt = rand_int8(rng, (co, ci), "int8")
    geo = Im2col(ci, h, w, 1, 1, 1, 1, 1, 1, 0, 0, h, w)
    gemm = IntGemm(co, h * w, ci, IntMatrix("int8", const=wt),
                   IntMatrix("uint8", buf=Buf("x"), zero_point=128, im2col=geo), Buf("c"), h * w)
    c = np.zeros((co, h * w), np.int32)
    note = run_gemm(gemm, {"x": x, "c": c}, ctx)
    assert ctx[1] == "" or "im2col" not in note
    cols = x.reshape(ci, -1).astype(np.int64) - 128
    np.testing.assert_array_equal(c, wt.astype(np.int64) @ cols)


@pytest.mark.parametrize("mnk", [(1, 1, 1), (1, 5, 3), (2, 17, 4), (9, 16, 5), (8, 48, 8),
                                 (3, 49, 130), (17, 97, 2)])
def test_small_and_ragged_shapes(ctx, mnk) -> None:
    """Fewer rows than a tile, n below one vector, K below one k-step, requantized
    per column, runtime B with its column sums."""
    rng = np.random.default_rng(sum(mnk))
    m, n, k = mnk
    a, b = rand_int8(rng, (m, k), "int8"), rand_int8(rng, (k, n), "uint8")
    scale = (rng.random(n) * 0.05 + 1e-3).astype(np.float32)
    gemm = IntGemm(m, n, k, IntMatrix("int8", buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=-7),
                   IntMatrix("uint8", buf=Buf("b"), row_stride=n, col_stride=1, zero_point=131),
                   Buf("c"), n, bias=rng.integers(-50, 50, n).astype(np.int32),
                   requant=Requant(scale, -2, "int8"))
    c = np.zeros((m, n), np.int8)
    run_gemm(gemm, {"a": a, "b": b, "c": c}, ctx, any_vnni=True)
    acc = (a.astype(np.int64) + 7) @ (b.astype(np.int64) - 131) + gemm.bias
    np.testing.assert_array_equal(c, requant_ref(acc, scale, -2, "int8"))


@pytest.mark.parametrize("const_b", [True, False])
def test_plain_path_blocks_columns(const_b: bool) -> None:
    """The plain kernel in column blocks: a runtime B whose i16 copy would pass
    BZ_BUDGET (K * N * 2 bytes) is copied a ragged block at a time; a constant B
    wider than one block is read in place, its per-column zero points applied
    after the dot products. Neither needs a weight-sized scratch."""
    from tinyc.codegen.kernels.int8.igemm_plain import BZ_BUDGET, plain_block, plain_scratch_bytes

    rng = np.random.default_rng(9)
    m, n, k = 3, 600, 301
    nb = plain_block(n, k, const_b)
    assert n % nb and nb < n, nb  # several blocks, the last one ragged
    assert plain_scratch_bytes(nb, k, const_b) <= BZ_BUDGET + 4 * 512 + 64
    a, b = rand_int8(rng, (m, k), "int8"), rand_int8(rng, (k, n), "int8")
    za, zb = 3, rng.integers(-128, 128, n)
    bop = IntMatrix("int8", const=b, zero_point=zb) if const_b else \
        IntMatrix("int8", buf=Buf("b"), row_stride=n, col_stride=1, zero_point=zb)
    gemm = IntGemm(m, n, k, IntMatrix("int8", buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=za), bop, Buf("c"), n)
    c = np.zeros((m, n), np.int32)
    run_gemm(gemm, {"a": a, "b": b, "c": c}, (LowerContext(None, host_target(512), ()), ""))
    np.testing.assert_array_equal(c, (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb))


def test_a_packed_panel_by_panel_as_on_bare_metal(monkeypatch) -> None:
    """Bare-metal targets pack a runtime A one MR-row panel at a time (constant B)
    and bound B's block to 16 KiB; the same kernels, run here on this host."""
    import tinyc.tensorize.int_gemm as int_gemm

    target = host_target(512)
    sets = sets_for_features(target)
    if "avx512_vnni" not in {s.name for s in sets}:
        pytest.skip("this CPU lacks avx512_vnni")
    monkeypatch.setattr(int_gemm, "_bare_metal", lambda target: True)
    rng = np.random.default_rng(8)
    m, n, k, batch = 21, 70, 300, 2  # rows over several panels, B over several blocks
    a = rand_int8(rng, (batch, m, k), "int8")
    w = rand_int8(rng, (k, n), "int8")
    gemm = IntGemm(m, n, k, IntMatrix("int8", buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=-3),
                   IntMatrix("int8", const=w, zero_point=2), Buf("c"), n, batch=batch,
                   a_bstride=m * k, c_bstride=m * n)
    c = np.zeros((batch, m, n), np.int32)
    plan = int_gemm_calls(LowerContext(None, target, sets), gemm, "t")  # type: ignore[arg-type]
    assert "_ap_" in plan.calls[0].kernel.name
    run_node_calls([LoweredNode("t", "IGemm", ("c",), plan.calls)], {"a": a, "c": c}, target)
    want = (a.astype(np.int64) + 3) @ (w.astype(np.int64) - 2)
    np.testing.assert_array_equal(c, want)
