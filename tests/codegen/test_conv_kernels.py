"""The conv kernels alone: im2col-fed GEMM with small runtime blocks (K blocks
that start mid-channel, several N blocks, both im2col paths) and the direct
depthwise kernel, against numpy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinyc.codegen.kernels.gemm.conv_direct import GEOMETRY, DepthwiseSpec
from tinyc.codegen.kernels.gemm.gemm import Blocking, GemmSpec, default_tile, scratch_bytes
from tinyc.codegen.kernels.gemm.gemm_epilogue import Epilogue
from tinyc.codegen.kernels.gemm.pack import pack_a_const, pack_b_const
from tinyc.target.machine import CpuTarget, host_triple
from tinyc.testing.kernel_harness import CompiledKernels, host_target

AVX512 = host_target(512)
AVX2 = CpuTarget(host_triple(), "x86-64-v3", "", 256)


def im2col(x: np.ndarray, kh: int, kw: int, s: tuple[int, int], d: tuple[int, int],
           p: tuple[int, int, int, int]) -> tuple[np.ndarray, int, int]:
    """[C*kh*kw, Ho*Wo] of one image, pads p = (top, left, bottom, right)."""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (p[0], p[2]), (p[1], p[3])))
    ho = (h + p[0] + p[2] - (kh - 1) * d[0] - 1) // s[0] + 1
    wo = (w + p[1] + p[3] - (kw - 1) * d[1] - 1) // s[1] + 1
    cols = np.empty((c, kh, kw, ho, wo), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, ky, kx] = xp[:, ky * d[0]:ky * d[0] + s[0] * ho:s[0],
                                 kx * d[1]:kx * d[1] + s[1] * wo:s[1]]
    return cols.reshape(c * kh * kw, ho * wo), ho, wo


GEOMETRIES = {
    # name: (C, H, W, kh, kw, strides, dilations, pads)
    "two_row_loads": (5, 9, 37, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
    "gather_stride2": (4, 13, 22, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1)),
    "gather_narrow": (6, 11, 7, 3, 2, (1, 1), (2, 1), (2, 0, 1, 1)),
    "dilated_wide": (3, 8, 40, 2, 3, (1, 1), (1, 3), (0, 3, 1, 0)),
    "pairs_stride2": (4, 9, 45, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1)),
    "pairs_stride2_dilated": (3, 8, 50, 3, 2, (1, 2), (2, 2), (2, 1, 0, 2)),
}


@pytest.mark.parametrize("target", [AVX512, AVX2], ids=["avx512", "avx2"])
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_im2col_gemm_small_blocks(target, name):
    c, h, w, kh, kw, s, d, p = GEOMETRIES[name]
    rng = np.random.default_rng(5)
    n_img, co = 2, 11
    x = rng.standard_normal((n_img, c, h, w), np.float32)
    wt = rng.standard_normal((co, c * kh * kw), np.float32)
    bias = rng.standard_normal(co, np.float32)
    cols, ho, wo = im2col(x[0], kh, kw, s, d, p)
    mr, nv = default_tile(target.f32_lanes, co)
    spec = GemmSpec(mr, nv, target.f32_lanes, "packed", "im2col", Epilogue("row", clip=True))
    # K blocks of 7 rows start inside a channel's taps; N blocks of one panel.
    blk = Blocking(kc=7, mc=mr, nc=spec.nr)
    y = np.full((n_img, co, ho * wo), np.nan, np.float32)
    values = dict(a=pack_a_const(wt, mr), b=x, c=y,
                  scratch=np.zeros(scratch_bytes(spec, blk) // 4, np.float32),
                  M=co, N=ho * wo, K=c * kh * kw, ldc=ho * wo, kc=blk.kc, mc=blk.mc, nc=blk.nc,
                  batch=n_img, a_bstride=0, b_bstride=c * h * w, c_bstride=co * ho * wo,
                  H=h, W=w, kh=kh, kw=kw, sh=s[0], sw=s[1], dh=d[0], dw=d[1], ph=p[0], pw=p[1],
                  Wo=wo, bias=bias, ldbias=1, bias_bstride=0, lo=-1.0, hi=2.0)
    CompiledKernels([spec.kernel()], target)(spec.name, *spec.args(values))
    for i in range(n_img):
        cols = im2col(x[i], kh, kw, s, d, p)[0]
        expected = np.clip(wt @ cols + bias[:, None], -1.0, 2.0)
        np.testing.assert_allclose(y[i], expected, rtol=1e-4, atol=1e-4)


DEPTHWISE = {  # (kh, kw, strides, dilations, pads)
    "3x3_s1": (3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
    "3x3_s2": (3, 3, (2, 2), (1, 1), (1, 1, 1, 1)),
    "5x3_s3_dilated": (5, 3, (1, 3), (2, 1), (4, 0, 3, 2)),
    "1x5_s1_unpadded": (1, 5, (2, 1), (1, 2), (0, 0, 0, 0)),
}


@pytest.mark.parametrize("target", [AVX512, AVX2], ids=["avx512", "avx2"])
@pytest.mark.parametrize("case", sorted(DEPTHWISE))
def test_depthwise_kernel_with_residual(target, case):
    """Sizes give interior tiles (plain loads) and border tiles (masked) alike."""
    check_depthwise(target, DEPTHWISE[case], 13, 75, direct=False)


DIRECT = {  # W-stride 1 or 2, output rows no wider than a vector: (geometry, H, W)
    "3x3_7x7": ((3, 3, (1, 1), (1, 1), (1, 1, 1, 1)), 7, 7),
    "3x3_s2x1_dilated_9x6": ((3, 3, (2, 1), (2, 2), (2, 1, 2, 3)), 9, 6),
    "5x5_unpadded_13x8": ((5, 5, (1, 1), (1, 1), (0, 0, 0, 0)), 13, 8),
    "3x3_s2_14x14": ((3, 3, (2, 2), (1, 1), (1, 1, 1, 1)), 14, 14),  # one vector of taps
    "3x3_s2_dilated_13x11": ((3, 3, (2, 2), (2, 2), (2, 2, 2, 2)), 13, 11),
    "3x3_s2_28x29": ((3, 3, (2, 2), (1, 1), (1, 1, 1, 1)), 28, 29),  # taps span 2 vectors
    "3x3_s2_40x41": ((3, 3, (2, 2), (1, 1), (1, 1, 1, 1)), 40, 41),  # 2 chunks of outputs
}


@pytest.mark.parametrize("target", [AVX512, AVX2], ids=["avx512", "avx2"])
@pytest.mark.parametrize("case", sorted(DIRECT))
def test_depthwise_direct_loads(target, case):
    """Taps loaded from the unpadded input under column masks, rows outside the
    image skipped."""
    geometry, h, w = DIRECT[case]
    check_depthwise(target, geometry, h, w, direct=True)


def test_direct_loads_chosen_for_planes_one_vector_wide():
    assert DepthwiseSpec.direct_pays(1, 14, 16)
    assert not DepthwiseSpec.direct_pays(1, 28, 16)
    assert DepthwiseSpec.direct_pays(2, 7, 16) and DepthwiseSpec.direct_pays(2, 56, 16)
    assert not DepthwiseSpec.direct_pays(3, 3, 16)


@pytest.mark.parametrize("direct", [False, True], ids=["padded", "direct"])
def test_depthwise_sizes_compiled_in(direct):
    """A threaded kernel with its sizes compiled in (DepthwiseSpec.geometry) computes
    what the generic one does; its sizes stand in the name, one kernel per layer."""
    check_depthwise(AVX512, DIRECT["3x3_s2_14x14"][0], 14, 14, direct, threads=2)


def check_depthwise(target, geometry, h, w, direct, threads=1):
    rng = np.random.default_rng(6)
    n_img, c, mult = 2, 3, 2
    kh, kw, s, d, p = geometry
    x = rng.standard_normal((n_img, c, h, w), np.float32)
    wt = rng.standard_normal((c * mult, kh, kw), np.float32)
    ho = (h + p[0] + p[2] - (kh - 1) * d[0] - 1) // s[0] + 1
    wo = (w + p[1] + p[3] - (kw - 1) * d[1] - 1) // s[1] + 1
    res = rng.standard_normal((n_img, c * mult, ho, wo), np.float32)
    epi = Epilogue(residual=True, clip=True)
    y = np.full_like(res, np.nan)
    spec = DepthwiseSpec(kh, kw, s[0], s[1], d[0], d[1], target.f32_lanes, epi, direct=direct,
                         threads=threads)
    hp, wp = spec.padded_plane(ho, wo)
    pad = np.full(hp * wp * threads, np.nan, np.float32)  # never read unpadded garbage
    sizes = dict(N=n_img, C=c, mult=mult, H=h, W=w, ph=p[0], pw=p[1], Ho=ho, Wo=wo, Hp=hp,
                 Wp=wp)
    if threads > 1:
        spec = replace(spec, geometry=tuple(sizes[k] for k in GEOMETRY))
        assert f"_{n_img}x{c}x{mult}x{h}x{w}x" in spec.name
    values = dict(x=x, w=wt, y=y, pad=pad, res=res, ldres=ho * wo, lo=0.0, hi=np.inf, **sizes)
    CompiledKernels([spec.kernel()], target)(spec.name, *spec.args(values))
    for i in range(n_img):
        for co in range(c * mult):
            cols = im2col(x[i, co // mult][None], kh, kw, s, d, p)[0]
            plane = (wt[co].reshape(1, -1) @ cols).reshape(ho, wo)
            expected = np.maximum(plane + res[i, co], 0.0)
            np.testing.assert_allclose(y[i, co], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mr", [7, 8])
@pytest.mark.parametrize("a_src", ["im2col", "vstrided"])
def test_transposed_gemm_small_blocks(mr, a_src):
    """Y^T = im2col(X)^T @ W^T with pixels as rows and Y stored column-major:
    several K blocks (accumulating through the transposed stores), edge tiles
    in both directions, bias per column, transposed residual, clip."""
    rng = np.random.default_rng(8)
    n_img, c, h, w, co = 2, 6, 7, 9, 37
    kh, kw = (3, 3) if a_src == "im2col" else (1, 1)
    pads = (1, 1, 1, 1) if a_src == "im2col" else (0, 0, 0, 0)
    x = rng.standard_normal((n_img, c, h, w), np.float32)
    wt = rng.standard_normal((co, c * kh * kw), np.float32)
    bias = rng.standard_normal(co, np.float32)
    cols, ho, wo = im2col(x[0], kh, kw, (1, 1), (1, 1), pads)
    pixels = ho * wo
    res = rng.standard_normal((n_img, co, pixels), np.float32)
    epi = Epilogue("col", residual=True, clip=True, transposed=True)
    spec = GemmSpec(mr, 3, 16, a_src, "packed", epi)
    blk = Blocking(kc=20, mc=2 * mr, nc=48)
    y = np.full((n_img, co, pixels), np.nan, np.float32)
    values = dict(a=x, b=pack_b_const(np.ascontiguousarray(wt.T), spec.nr), c=y,
                  scratch=np.zeros(scratch_bytes(spec, blk) // 4, np.float32),
                  M=pixels, N=co, K=c * kh * kw, ldc=pixels, kc=blk.kc, mc=blk.mc, nc=blk.nc,
                  batch=n_img, a_bstride=c * h * w, b_bstride=0, c_bstride=co * pixels,
                  bias=bias, ldbias=0, bias_bstride=0, res=res, ldres=pixels,
                  res_bstride=co * pixels, lo=-1.0, hi=2.0)
    if a_src == "im2col":
        values.update(H=h, W=w, kh=kh, kw=kw, sh=1, sw=1, dh=1, dw=1, ph=1, pw=1, Wo=wo)
    else:
        values.update(sam=1, sak=h * w)
    CompiledKernels([spec.kernel()], AVX512)(spec.name, *spec.args(values))
    for i in range(n_img):
        cols = im2col(x[i], kh, kw, (1, 1), (1, 1), pads)[0]
        expected = np.clip(wt @ cols + bias[:, None] + res[i], -1.0, 2.0)
        np.testing.assert_allclose(y[i], expected, rtol=1e-4, atol=1e-4)
