"""Packing int8 GEMM operands into the panels of a tensorized micro-kernel.

With an intrinsic step of n lanes x k bytes (VNNI: 16 x 4):
- A panels [M/MR][Kp/k][MR][k]: per k-step, each row's k consecutive bytes;
- B panels [N/NR][Kp/k][NV][tile]: per k-step, NV values of the step's B tile
  in its layout (b_order ("n", "k"): lane-major, the k bytes of a column
  together; ("k", "n"): row-major);
Kp is K rounded up to k, padded with zeros (zero products). A "flipped"
operand has its sign bit flipped (x ^ 0x80) on the way: int8 <-> uint8 + 128.

The im2col view of an NCHW image (one group of a conv), as in pack_im2col.py:
    B[k, p] = X[ci, y*sh + ky*dh - ph, x*sw + kx*dw - pw],  k = (ci, ky, kx), p = (y, x)
and outside the image the image's zero point (so B - zb is 0 there).
"""

from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

IM2COL_GEOMETRY = ["H", "W", "kh", "kw", "sh", "sw", "dh", "dw", "ph", "pw", "Wo"]


# ---- compile time (numpy) ----


def flip(x: np.ndarray) -> np.ndarray:
    """int8 <-> uint8 by the sign bit: the value +-128, the same bytes otherwise."""
    return (x.view(np.uint8) ^ np.uint8(0x80)).view(np.int8 if x.dtype == np.uint8 else np.uint8)


def pack_a_int8(a: np.ndarray, mr: int, kstep: int) -> np.ndarray:
    """A (M x K, 8-bit) -> [ceil(M/MR)][Kp/k][MR][k] bytes, zero padded."""
    m, k = a.shape
    panels, ksteps = -(-m // mr), -(-k // kstep)
    padded = np.zeros((panels * mr, ksteps * kstep), a.dtype)
    padded[:m, :k] = a
    return np.ascontiguousarray(
        padded.reshape(panels, mr, ksteps, kstep).transpose(0, 2, 1, 3)).view(np.uint8)


def pack_b_int8(b: np.ndarray, nr: int, lanes: int, kstep: int,
                order: tuple[str, str]) -> np.ndarray:
    """B (K x N, 8-bit) -> [ceil(N/NR)][Kp/k][NR/lanes][tile] bytes, zero padded;
    the tile is lanes x k, n-major if order is ("n", "k"), else k-major."""
    k, n = b.shape
    panels, ksteps, nv = -(-n // nr), -(-k // kstep), nr // lanes
    padded = np.zeros((ksteps * kstep, panels * nr), b.dtype)
    padded[:k, :n] = b
    # axes: kstep-group, kk, panel, vector, lane
    t = padded.reshape(ksteps, kstep, panels, nv, lanes)
    t = t.transpose(2, 0, 3, 4, 1) if order == ("n", "k") else t.transpose(2, 0, 3, 1, 4)
    return np.ascontiguousarray(t).view(np.uint8)


# ---- runtime (generated) ----


def im2col_source(b: ir.IRBuilder, g: dict[str, ir.Value], k: ir.Value,
                  p: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(element offset into the image, inside the image?) of im2col element (k, p)."""
    taps = b.mul(g["kh"], g["kw"])
    ci = b.sdiv(k, taps)
    rem = b.sub(k, b.mul(ci, taps))
    ky = b.sdiv(rem, g["kw"])
    kx = b.sub(rem, b.mul(ky, g["kw"]))
    y = b.sdiv(p, g["Wo"])
    x = b.sub(p, b.mul(y, g["Wo"]))
    iy = b.sub(b.add(b.mul(y, g["sh"]), b.mul(ky, g["dh"])), g["ph"])
    ix = b.sub(b.add(b.mul(x, g["sw"]), b.mul(kx, g["dw"])), g["pw"])
    inside = b.and_(b.icmp_unsigned("<", iy, g["H"]), b.icmp_unsigned("<", ix, g["W"]))
    plane = b.mul(g["H"], g["W"])
    return b.add(b.mul(ci, plane), b.add(b.mul(iy, g["W"]), ix)), inside
