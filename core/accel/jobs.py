"""One layer of work for the engine, described independently of ONNX:

    out[b, m, n] = post( sum_k (inp[b, m, k] - zi) * (wgt[k, n] - zw[n]) )
    post(acc)    = clamp(saturate(round_half_even(float32(acc + bias[n]) * scale[n]) + zo))

`inp` is a runtime tensor in device memory (a row-major matrix, or the im2col
view of an NCHW image: m = output pixels, k = (ci, ky, kx)); `wgt` a constant.
This is the integer math of tinyc's CPU path (tinyc.lower.igemm), so a region
gives the same bits on either device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


@dataclass(frozen=True)
class ConvGeometry:
    """B[p, k] = X[ci, y*sh + ky*dh - ph, x*sw + kx*dw - pw], k = (ci, ky, kx), p = y*wo + x."""

    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    ph: int = 0
    pw: int = 0
    ho: int = 0
    wo: int = 0


@dataclass(frozen=True, eq=False)
class GemmJob:
    name: str
    m: int
    n: int
    k: int
    source: str  # the input tensor, in device memory
    dest: str  # the output tensor, in device memory
    weights: np.ndarray  # [k, n], int8 or uint8
    input_dtype: str
    input_zero: int = 0
    weight_zero: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))  # (n,)
    bias: np.ndarray | None = None  # (n,) int32
    scale: np.ndarray | None = None  # (n,) float32; None: int32 output, no post-ops
    out_zero: int = 0
    out_dtype: str = "int32"
    clamp: tuple[int, int] | None = None  # fused ReLU / clip, on the quantized output
    batch: int = 1
    geometry: ConvGeometry | None = None  # set: inp is im2col of an NCHW image
    channels_first_out: bool = False  # out[b, n, m] (NCHW), else out[b, m, n]
    # slots the input, weight and accumulator buffers are split into while this
    # job runs (a tile per slot): 2 double-buffers, 1 gives a tile the whole buffer
    slots: tuple[int, int, int] = (2, 2, 2)

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.n * self.k

    @property
    def output_bounds(self) -> tuple[int, int]:
        lo, hi = RANGES.get(self.out_dtype, (-(1 << 31), (1 << 31) - 1))
        if self.clamp is not None:
            lo, hi = max(lo, self.clamp[0]), min(hi, self.clamp[1])
        return lo, hi


def im2col(image: np.ndarray, g: ConvGeometry, pad_value: int) -> np.ndarray:
    """[c, h, w] -> [ho*wo, c*kh*kw]; outside the image reads `pad_value` (the zero point)."""
    padded = np.full((g.c, g.h + 2 * g.ph, g.w + 2 * g.pw), pad_value, image.dtype)
    padded[:, g.ph:g.ph + g.h, g.pw:g.pw + g.w] = image
    cols = np.empty((g.ho, g.wo, g.c, g.kh, g.kw), image.dtype)
    for ky in range(g.kh):
        for kx in range(g.kw):
            y0, x0 = ky * g.dh, kx * g.dw
            cols[:, :, :, ky, kx] = padded[:, y0:y0 + g.sh * (g.ho - 1) + 1:g.sh,
                                           x0:x0 + g.sw * (g.wo - 1) + 1:g.sw].transpose(1, 2, 0)
    return cols.reshape(g.ho * g.wo, g.c * g.kh * g.kw)


def requantize(acc: np.ndarray, job: GemmJob, n0: int, n1: int) -> np.ndarray:
    """int32 [m, n0:n1] -> output values as int32, exactly as tinyc's CPU epilogue
    (onnxruntime's MlasRequantizeOutput): float multiply, clamp, round half even."""
    if job.bias is not None:
        acc = acc + job.bias[n0:n1]
    if job.scale is None:
        return acc
    lo, hi = RANGES[job.out_dtype]
    zo = np.float32(job.out_zero)
    x = acc.astype(np.float32) * job.scale[n0:n1]
    x = np.clip(x, np.float32(lo) - zo, np.float32(hi) - zo)
    out = np.rint(x).astype(np.int32) + np.int32(job.out_zero)
    if job.clamp is not None:
        out = np.clip(out, *job.clamp)
    return out
