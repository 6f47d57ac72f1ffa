"""Packing int8 GEMM operands.

The im2col view of an NCHW image (one group of a conv), as in pack_im2col.py:
    B[k, p] = X[ci, y*sh + ky*dh - ph, x*sw + kx*dw - pw],  k = (ci, ky, kx), p = (y, x)
and outside the image the image's zero point (so B - zb is 0 there).
"""

from __future__ import annotations

import llvmlite.ir as ir

IM2COL_GEOMETRY = ["H", "W", "kh", "kw", "sh", "sw", "dh", "dw", "ph", "pw", "Wo"]


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
