"""com.microsoft MatMulNBits: Y = A @ dequant(B)^T (+ bias), B quantized to
`bits` along K in blocks of `block_size`, one scale (and zero point) per block.

Layout (onnxruntime's contrib definition):
    B            uint8 [N, k_blocks, block_size * bits / 8]; element k of a block
                 sits in bits [(k * bits) % 8 ...] of byte k * bits // 8
                 (4 bits: the even element in the low nibble)
    scales       [N * k_blocks] (or [N, k_blocks]), the float type of A
    zero_points  uint8 packed like B, each row padded to whole bytes
                 ([N, ceil(k_blocks * bits / 8)]), or the float type of A
                 [N * k_blocks]; absent: 2^(bits - 1)
    g_idx        int32 [K], the block of each k (default k // block_size; GPTQ's
                 act-order stores k out of block order, onnxruntime reads the
                 scale and zero point of element k from block g_idx[k])
    bias         [N]

4 and 8 bits with blocks of a multiple of 16 that divide K stay MatMulNBits
nodes, computed by the weight-only kernel (lower/matmul_nbits.py), which
unpacks blocks on the fly: the packed blocks are the only copy of the weight.
Other settings (2 bits, a K that is not a whole number of blocks) are
dequantized once, at compile time, into a float [K, N] constant that a MatMul
uses: w = (q - zero_point) * scale in float32, as onnxruntime computes it.
accuracy_level 4 with 4-bit weights quantizes A to int8 per block, as
onnxruntime does, where the target has an int8 dot step
(lower/matmul_nbits_i8.py); every other level computes in float32.
"""

from __future__ import annotations

import numpy as np
import onnx

from .llm_emit import Emitter, attr, inputs, refuse

BITS = (2, 4, 8)
KERNEL_BITS = (4, 8)  # what lower/matmul_nbits.py computes without a float copy


def decompose_matmul_nbits(em: Emitter) -> None:
    node = em.node
    a, b, scales, zero_points, g_idx, bias = inputs(node, 6)
    k, n = int(attr(node, "K")), int(attr(node, "N"))
    bits, block = int(attr(node, "bits", 4)), int(attr(node, "block_size"))
    level = int(attr(node, "accuracy_level", 0))
    if bits not in BITS:
        raise refuse(node, f"bits={bits} (tinyc supports {BITS})")
    if block < 16 or block & (block - 1):
        raise refuse(node, f"block_size={block} is not a power of 2 >= 16")
    if not 0 <= level <= 4:
        raise refuse(node, f"accuracy_level={level} is not 0..4")
    q, s = em.constant_value(b), em.constant_value(scales)
    zp = em.constant_value(zero_points) if zero_points else None
    if q is None or s is None or (zero_points and zp is None):
        raise refuse(node, "weights, scales or zero points computed at run time")
    groups = _block_of_k(em, node, g_idx, k, block) if g_idx else None
    kernel_form = bits in KERNEL_BITS and block % 16 == 0 and k % block == 0
    if kernel_form and groups is None:
        em.keep()
        return
    if kernel_form and _whole_blocks(groups, block):
        _reorder_k(em, q, groups, n=n, k=k, bits=bits)
        return
    weight = dequantize(q, s, zp, k=k, n=n, bits=bits, block=block, groups=groups)
    w = em.const(weight.T.astype(s.dtype, copy=False), hint="dequantized_weight")
    y = node.output[0]
    if bias:
        em.op("Add", [em.op("MatMul", [a, w]), bias], y)
    else:
        em.op("MatMul", [a, w], y)


def _block_of_k(em: Emitter, node: onnx.NodeProto, g_idx: str, k: int,
               block: int) -> np.ndarray | None:
    """g_idx as int64 [K], None when it is the default k // block_size."""
    value = em.constant_value(g_idx)
    if value is None:
        raise refuse(node, "g_idx computed at run time")
    value = value.reshape(-1).astype(np.int64)
    if value.size != k or value.min(initial=0) < 0 or value.max(initial=0) >= -(-k // block):
        raise refuse(node, f"g_idx has {value.size} entries or a block outside 0..{k // block}")
    return None if np.array_equal(value, np.arange(k) // block) else value


def _whole_blocks(groups: np.ndarray, block: int) -> bool:
    return bool((np.bincount(groups) == block).all())


def _reorder_k(em: Emitter, q: np.ndarray, groups: np.ndarray, *, n: int, k: int,
               bits: int) -> None:
    """Act-order with every block whole: sort k by block, the weight codes at
    compile time and A's columns at run time (a Gather of K floats per row), so
    the weight stays packed for the kernel. The sum over k is the same."""
    node = em.node
    a, _, scales, zero_points, _, bias = inputs(node, 6)
    order = np.argsort(groups, kind="stable")
    codes = unpack(q.reshape(n, -1), bits)[:, order]
    per_byte = 8 // bits
    packed = (codes.reshape(n, k // per_byte, per_byte).astype(np.uint16)
              << (np.arange(per_byte, dtype=np.uint16) * bits)).sum(-1).astype(np.uint8)
    a_sorted = em.op("Gather", [a, em.const(order, np.int64, "k_order")], axis=-1)
    attrs = {name: attr(node, name) for name in ("K", "N", "bits", "block_size",
                                                  "accuracy_level") if attr(node, name) is not None}
    em.op("MatMulNBits", [a_sorted, em.const(packed.reshape(q.shape), hint="q_k_sorted"), scales,
                          zero_points, "", bias], node.output[0], domain=node.domain, **attrs)


def dequantize(q: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None, *, k: int,
               n: int, bits: int, block: int, groups: np.ndarray | None = None) -> np.ndarray:
    """The float32 [N, K] weight (see the module doc for the layouts); `groups`:
    a non-default g_idx, the block of each k."""
    k_blocks = -(-k // block)
    blob = block * bits // 8
    if q.size != n * k_blocks * blob:
        raise ValueError(f"B has {q.size} bytes, not N*k_blocks*blob = {n * k_blocks * blob}")
    values = unpack(q.reshape(n, k_blocks * blob), bits)  # [N, k_blocks * block]
    values = values.reshape(n, k_blocks, block).astype(np.float32)
    if scales.size != n * k_blocks:
        raise ValueError(f"scales has {scales.size} values, not N*k_blocks = {n * k_blocks}")
    scale = scales.reshape(n, k_blocks, 1).astype(np.float32)
    if zero_points is None:
        zero = np.float32(1 << (bits - 1))
    elif zero_points.dtype == np.uint8:
        zero = unpack(zero_points.reshape(n, -1), bits)[:, :k_blocks]
        zero = zero.reshape(n, k_blocks, 1).astype(np.float32)
    else:  # float zero points (HQQ-style), the same formula
        zero = zero_points.reshape(n, k_blocks, 1).astype(np.float32)
    if groups is not None:  # element k takes block groups[k]'s scale and zero point
        values = values.reshape(n, -1)[:, :k]
        scale, zero = (np.broadcast_to(x, (n, k_blocks, 1))[:, groups, 0] for x in (scale, zero))
        return (values - zero) * scale
    weight = (values - zero) * scale
    return weight.reshape(n, k_blocks * block)[:, :k]


def unpack(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [rows, bytes] -> uint8 [rows, bytes * 8 / bits], lowest bits first."""
    if bits == 8:
        return packed
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    mask = np.uint8((1 << bits) - 1)
    return ((packed[..., None] >> shifts) & mask).reshape(packed.shape[0], -1)


def decompose_gather_block_quantized(em: Emitter) -> None:
    """com.microsoft GatherBlockQuantized (the builder's tied int4 embeddings):
    rows of a constant uint8 table of 4-bit codes, quantized in blocks along its
    last axis, gathered along axis 0. The table is dequantized once, at compile
    time, into a float constant that a Gather reads (the embedding table is
    read a row per token, so its float copy costs memory, not time)."""
    node = em.node
    data, indices, scales, zero_points = inputs(node, 4)
    bits, block = int(attr(node, "bits", 4)), int(attr(node, "block_size", 128))
    gather_axis = int(attr(node, "gather_axis", 0))
    quantize_axis = int(attr(node, "quantize_axis", 1))
    q, s = em.constant_value(data), em.constant_value(scales)
    zp = em.constant_value(zero_points) if zero_points else None
    if q is None or s is None or (zero_points and zp is None):
        raise refuse(node, "a table, scales or zero points computed at run time")
    if q.dtype != np.uint8 or q.ndim != 2 or bits != 4 or gather_axis != 0 \
            or quantize_axis not in (1, -1):
        raise refuse(node, f"only a uint8 [rows, bytes] table of 4 bits gathered along axis 0 "
                           f"(bits={bits}, gather_axis={gather_axis}, quantize_axis="
                           f"{quantize_axis}, {q.dtype} {q.shape})")
    rows, k = q.shape[0], q.shape[1] * 8 // bits
    if k % block:
        raise refuse(node, f"{k} columns are not whole blocks of {block}")
    table = dequantize(q.reshape(rows, -1), s, zp, k=k, n=rows, bits=bits, block=block)
    em.op("Gather", [em.const(table.astype(s.dtype), hint="dequantized_table"), indices],
          node.output[0], axis=0)
