"""Summation orders of other runtimes that a GEMM lowering can reproduce.

A float sum rounds differently in another order, and a QuantizeLinear after it
turns a last-bit difference into a whole step now and then, which a deep
network amplifies. Where onnxruntime runs a QDQ unit in float (its int8 pairs
are shared, see passes/quant_qdq.py), quant_canonicalize marks a Conv, or a
MatMul of two activations, with SUM_ORDER = "mlas", and its GEMM then sums each output as
MLAS's SGEMM does: K in blocks of `mlas_k_block` rows, each block a chain of
FMAs from zero added to the partial result, the bias last. tinyc's micro-kernel
already works that way; only the block length has to agree. Measured: int8 QDQ
resnet50 bit-exact with onnxruntime (2 steps apart with tinyc's own blocks).

Not mirrored: onnxruntime turns DequantizeLinear(constant) -> MatMul into
MatMulNBits (another computation), and its float Gemm adds C before the
products, where tinyc's epilogue adds it last.
"""

from __future__ import annotations

from .graph import Node

SUM_ORDER = "sum_order"  # node attribute; "mlas" or absent


def k_block(node: Node, n: int, k: int) -> int | None:
    """The K block length that reproduces the summation order `node` asks for,
    None for tinyc's own choice. `n`: the GEMM's columns as MLAS sees them
    (output pixels of a conv, N of a MatMul / Gemm)."""
    if node.attr(SUM_ORDER) != "mlas":
        return None
    return mlas_k_block(n, k)


def mlas_k_block(n: int, k: int) -> int:
    """MlasSgemmOperation's K stride: 128 to start with; halved (and the N
    stride doubled) while half still covers K, when N >= K; doubled while
    half the N stride (128, down to 16) still covers N, when N < K."""
    stride_n, stride_k = 128, 128
    if n >= k:
        while stride_k // 2 >= k:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    return stride_k
