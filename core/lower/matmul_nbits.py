"""com.microsoft MatMulNBits with 4- or 8-bit constant weights, kept packed
(the frontend keeps the node only then; other settings are dequantized at
compile time there, frontend/matmul_nbits.py). Three kernels:

- accuracy_level 4 on a target with a u8 x s8 dot step: int8 activations
  (matmul_nbits_i8.py);
- whole zero points (uint8 or the default 2^(bits - 1)), float32 compute: the
  weight repacked into column panels (matmul_nbits_panels.py);
- float zero points: codegen/kernels/gemm/matmul_nbits.py, which unpacks the
  original blocks on the fly; scales float32 [N, k_blocks], zero points float.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.gemm import matmul_nbits as K
from ..errors import NotLowerable
from ..frontend.matmul_nbits import unpack
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .elementwise import require_f32, shape_of
from .matmul_nbits_i8 import lower_int8_activations
from .matmul_nbits_panels import lower_panels
from .registry import lowers


@lowers("com.microsoft.MatMulNBits")
def lower_matmul_nbits(node: Node, ctx: LowerContext) -> LoweredNode:
    require_f32(node, ctx, [node.inputs[0], node.outputs[0]])
    a, b, scales, zero_points, _g_idx, bias = (list(node.inputs) + [""] * 6)[:6]
    y = node.outputs[0]
    k, n = int(node.attr("K")), int(node.attr("N"))
    bits, block = int(node.attr("bits", 4)), int(node.attr("block_size"))
    if bits not in (4, 8) or block % K.LANES or k % block:
        raise NotLowerable(f"MatMulNBits bits={bits} block={block} K={k}")
    for name in (b, scales) + ((zero_points,) if zero_points else ()):
        if not ctx.graph.is_const(name):
            raise NotLowerable(f"MatMulNBits input '{name}' is not a constant")
    k_blocks = k // block
    a_shape = shape_of(ctx, a)
    if a_shape[-1] != k:
        raise NotLowerable(f"MatMulNBits A {a_shape} does not end in K={k}")
    m = math.prod(a_shape[:-1])
    int_zero = not zero_points or ctx.graph.const(zero_points).dtype == np.uint8
    zeros = _zeros(ctx, zero_points, bits, n, k_blocks)
    if int(node.attr("accuracy_level", 0)) == 4 and bits == 4 and int_zero:
        lowered = lower_int8_activations(node, ctx, m, zeros)
        if lowered is not None:
            return lowered
    if int_zero:
        return lower_panels(node, ctx, m, zeros)
    spec = K.NBitsSpec(bits, block, bool(bias), int_zero)
    scale = ctx.graph.const(scales).astype(np.float32, copy=False).reshape(-1)
    unused = Const(f"{node.name}.unused", np.zeros(1, np.float32))
    workers = max(1, ctx.target.threads)  # a scratch slice per worker
    args = (Buf(a), Buf(b), Const(f"{node.name}.scales", scale),
            Const(f"{node.name}.zeros", zeros), Buf(bias) if bias else unused, Buf(y),
            Scratch("wbuf", 4 * k * K.TILE * workers),
            m, n, k_blocks)
    return LoweredNode(node.name, node.op, node.outputs, [Call(K.matmul_nbits_kernel(spec), args)],
                       semantics=f"{y}[m, n] = sum_k {a}[m, k] * ((q[n, k] - z) * s)[n, k]",
                       note=f"{spec.name}: {bits}-bit blocks of {block} unpacked per call, "
                            f"never a float copy of the weight")


def _zeros(ctx: LowerContext, name: str, bits: int, n: int, k_blocks: int) -> np.ndarray:
    """[n * k_blocks] zero points: uint8 codes when whole, else float32."""
    if not name:
        return np.full(n * k_blocks, 1 << (bits - 1), np.uint8)
    z = ctx.graph.const(name)
    if z.dtype == np.uint8:
        return np.ascontiguousarray(unpack(z.reshape(n, -1), bits)[:, :k_blocks]).reshape(-1)
    return z.astype(np.float32).reshape(-1)
