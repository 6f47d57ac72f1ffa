"""MatMulNBits with whole zero points in float32 compute: the weight repacked
once, at compile time, into the column panels of
codegen/kernels/gemm/nbits_panels.py (same bytes, plus the last panel's
padding), so a decode step streams it row by row and a prefill dequantizes it
straight into the fp32 GEMM's panels."""

from __future__ import annotations

import numpy as np

from ..codegen.kernels.gemm.gemm import GemmSpec, choose_blocking, default_tile, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.nbits_panels import PanelSpec, matmul_nbits_panels_kernel
from ..frontend.matmul_nbits import unpack
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch

KC_ROWS = 256  # K block of the GEMM, rounded to whole quantization blocks


def lower_panels(node: Node, ctx: LowerContext, m, zeros: np.ndarray) -> LoweredNode:
    """zeros: uint8 [n * k_blocks] zero points (the default filled in)."""
    a, b, scales = node.inputs[:3]
    bias = node.inputs[5] if len(node.inputs) > 5 else ""
    y = node.outputs[0]
    k, n = int(node.attr("K")), int(node.attr("N"))
    bits, block = int(node.attr("bits", 4)), int(node.attr("block_size"))
    lanes = ctx.target.f32_lanes
    mr, nv = default_tile(lanes, 8)  # the full tile: one row runs the GEMV instead
    spec = PanelSpec(bits, block, nv * lanes)
    gemm = GemmSpec(mr, nv, lanes, "strided", "nbits", Epilogue("col" if bias else "none"),
                    threads=max(1, ctx.target.threads), nbits=spec)
    kc = max(block, min(KC_ROWS, k) // block * block)
    blk = choose_blocking(gemm, m, n, k, kc)
    q, s, z = repack(ctx.graph.const(b), ctx.graph.const(scales), zeros, spec, n, k)
    tag = node.name or y
    args = (Buf(a), Const(f"{tag}.q_panels", q), Const(f"{tag}.scale_panels", s),
            Const(f"{tag}.zero_panels", z),
            Buf(bias) if bias else Const(f"{tag}.unused", np.zeros(1, np.float32)), Buf(y),
            Scratch(f"{tag}.pack", scratch_bytes(gemm, blk)), m, n, k, blk.kc, blk.mc, blk.nc)
    kernel = matmul_nbits_panels_kernel(spec, gemm, bool(bias))
    return LoweredNode(node.name, node.op, node.outputs, [Call(kernel, args)],
                       semantics=f"{y}[m, n] = sum_k {a}[m, k] * ((q[n, k] - z) * s)[n, k]",
                       note=f"{kernel.name}: {bits}-bit weights in panels of {spec.width} "
                            f"columns; one row streams them, more dequantize KC={blk.kc} "
                            f"blocks into the fp32 GEMM's panels")


def repack(q: np.ndarray, scales: np.ndarray, zeros: np.ndarray, spec: PanelSpec, n: int,
           k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MatMulNBits' [N, k_blocks, block bytes] codes, [N * k_blocks] scales and
    zero points -> (q [panels][K / per_byte][W], scales and zeros
    [panels][k_blocks][W]); padding columns get code, zero and scale 0."""
    w, k_blocks = spec.width, k // spec.block
    panels = -(-n // w)
    codes = _padded(unpack(np.asarray(q, np.uint8).reshape(n, -1), spec.bits)[:, :k], panels * w)
    codes = codes.reshape(panels, w, k).transpose(0, 2, 1)  # [panels][K][W]
    if spec.bits == 4:
        codes = codes[:, 0::2, :] | (codes[:, 1::2, :] << 4)
    meta = [_padded(np.asarray(x).reshape(n, k_blocks), panels * w)
            .reshape(panels, w, k_blocks).transpose(0, 2, 1)
            for x in (np.asarray(scales, np.float32), zeros)]
    return (np.ascontiguousarray(codes, np.uint8), np.ascontiguousarray(meta[0], np.float32),
            np.ascontiguousarray(meta[1], np.uint8))


def _padded(rows: np.ndarray, total: int) -> np.ndarray:
    out = np.zeros((total,) + rows.shape[1:], rows.dtype)
    out[:rows.shape[0]] = rows
    return out
