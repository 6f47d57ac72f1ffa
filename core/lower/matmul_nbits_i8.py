"""MatMulNBits with accuracy_level 4 and 4-bit weights: activations quantized
to int8 per block and multiplied with the target's u8 x s8 dot-product step
(codegen/kernels/gemm/matmul_nbits_i8.py), as onnxruntime does at that level.

The step comes from the tensorizer: the target's intrinsics are matched
against  C[m, n] += A[m, k] * B[k, n]  with A int8 (activations, broadcast)
and B uint8 (the weight codes, per lane), and only a match that needs no sign
flip is taken. A target without one computes the node in float32, as at
level 0 (lower/matmul_nbits.py), which is at least as accurate.

The weight is repacked here once (the kernel's layout, same byte count); the
original packing is not kept.
"""

from __future__ import annotations

import numpy as np

from ..codegen.kernels.gemm import matmul_nbits_i8 as K8
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from ..tensorize.gemm_form import gemm_form
from ..tensorize.match import Match
from ..tensorize.select import choose
from ..tensorize.steps import micro_step

GEMM = "C[m, n] += A[m, k] * B[k, n]"
# 4-bit codes (0..15) are valid as uint8 and as int8: x86's vpdpbusd takes them
# unsigned, Arm's sdot signed
FORMS = ({"A": "int8", "B": "uint8", "C": "int32"}, {"A": "int8", "B": "int8", "C": "int32"})


def lower_int8_activations(node: Node, ctx: LowerContext, m, zeros: np.ndarray
                           ) -> LoweredNode | None:
    """The node on the int8 kernel, or None when the target has no fitting step."""
    a, b, scales, _zp, _g_idx, bias = (list(node.inputs) + [""] * 6)[:6]
    k, n, block = int(node.attr("K")), int(node.attr("N")), int(node.attr("block_size"))
    for dtypes in FORMS:
        choice = choose(gemm_form(GEMM, dtypes, "A"), ctx.intrinsics, ctx.target, (m, n, k),
                        _accepts(block))
        if choice.match is not None:
            break
    else:
        return None
    step = micro_step(choice.match)
    k_blocks = k // block
    uniform = zeros.size and np.all(zeros == zeros[0])
    spec = K8.NBitsI8Spec(step, block, bool(bias), int(zeros[0]) if uniform else None)
    groups = -(-n // step.n)
    weights = repack_weights(ctx.graph.const(b), n, k, block, step.n, step.k)
    per_group = _per_group(ctx.graph.const(scales).astype(np.float32).reshape(n, k_blocks),
                           groups, step.n)
    zero_table = (np.zeros(1, np.uint8) if uniform
                  else _per_group(zeros.reshape(n, k_blocks), groups, step.n))
    unused = Const(f"{node.name}.unused", np.zeros(1, np.float32))
    y = node.outputs[0]
    args = (Buf(a), Const(f"{node.name}.wq", weights), Const(f"{node.name}.scales", per_group),
            Const(f"{node.name}.zeros", zero_table), Buf(bias) if bias else unused, Buf(y),
            Scratch("qa", K8.scratch_bytes(m, k, k_blocks)), m, n, k_blocks)
    return LoweredNode(node.name, node.op, node.outputs,
                       [Call(K8.matmul_nbits_i8_kernel(spec), args)],
                       semantics=f"{y}[m, n] = sum_b sa * sw * (qa[m, b] . q[n, b] - z * sum qa)",
                       note=f"{spec.name}: A quantized to int8 per block of {block} "
                            f"(accuracy_level 4), {choice.summary}",
                       intrinsic=choice.match.name, rejected=choice.rejected)


def _accepts(block: int):
    def accept(mt: Match) -> str | None:
        if mt.flips or mt.widens:
            return "the kernel feeds int8 activations and 4-bit codes as they are (no flip, "\
                   "no widening)"
        if mt.tile["m"] != 1 or mt.b_order != ("n", "k"):
            return "the kernel's weight layout is one row of n lanes of k bytes"
        if block % (2 * mt.tile["k"]):
            return f"block {block} is not a whole number of step pairs"
        return None

    return accept


def repack_weights(q: np.ndarray, n: int, k: int, block: int, lanes: int, kstep: int
                   ) -> np.ndarray:
    """[N, kb, block/2] nibbles -> [G][kb][steps/2][lanes][kstep]: the k-steps of
    a pair in the low and high nibbles of the same bytes."""
    packed = np.ascontiguousarray(q, np.uint8).reshape(n, k // 2)
    codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, k)
    groups = -(-n // lanes)
    if groups * lanes != n:
        codes = np.concatenate([codes, np.zeros((groups * lanes - n, k), np.uint8)])
    steps = block // kstep
    tiles = codes.reshape(groups, lanes, k // block, steps // 2, 2, kstep)
    tiles = tiles.transpose(0, 2, 3, 4, 1, 5)  # [G][kb][pair][half][lanes][kstep]
    return np.ascontiguousarray(tiles[:, :, :, 0] | (tiles[:, :, :, 1] << 4)).reshape(-1)


def _per_group(table: np.ndarray, groups: int, lanes: int) -> np.ndarray:
    """[N, kb] -> [G][kb][lanes] (padded columns 0)."""
    n, k_blocks = table.shape
    padded = np.zeros((groups * lanes, k_blocks), table.dtype)
    padded[:n] = table
    return np.ascontiguousarray(padded.reshape(groups, lanes, k_blocks).transpose(0, 2, 1)
                                ).reshape(-1)
