"""Quantization parameters (scale, zero point, dtype, axis) read from a graph's
constants, and the float32 multipliers onnxruntime derives from them.

Shared by the quantized lowerings and by passes/quant_canonicalize.py, so both
agree on what a parameter set means. The multiplier formulas were found by
experiment against onnxruntime 1.31 (tests/quant/test_rounding_rules.py keeps
them honest): the order of the float32 operations matters for bit-exactness.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import NotLowerable
from .dtypes import DType
from .graph import Graph, Node

F32 = np.float32
QUANT_DTYPES = (DType.uint8, DType.int8)  # what quantized activations and weights may be


@dataclass(frozen=True)
class QParams:
    """scale (float32) and zero point, both of shape () per tensor or (C,) per axis."""

    scale: np.ndarray
    zero_point: np.ndarray  # int64
    dtype: DType
    axis: int | None = None  # the channel axis of a per-axis set

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1

    @property
    def scalar_scale(self) -> np.float32:
        return F32(self.scale.reshape(-1)[0])

    @property
    def scalar_zp(self) -> int:
        return int(self.zero_point.reshape(-1)[0])

    def same_as(self, other: QParams) -> bool:
        return (self.dtype == other.dtype and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))


ConstLookup = Callable[[str], "np.ndarray | None"]


def graph_consts(g: Graph) -> ConstLookup:
    return lambda name: g.constants.get(name) if name else None


def slot(node: Node, k: int) -> str:
    return node.inputs[k] if len(node.inputs) > k else ""


def read_qparams(const: ConstLookup, scale: str, zero_point: str, dtype: DType,
                 axis: int | None = None) -> QParams:
    """The parameters named by a node's scale and zero-point inputs; NotLowerable
    unless they are compile-time constants. A missing zero point is 0."""
    s = const(scale)
    if s is None:
        raise NotLowerable(f"scale {scale} is not a constant")
    z = const(zero_point) if zero_point else np.zeros(np.shape(s), np.int64)
    if z is None:
        raise NotLowerable(f"zero point {zero_point} is not a constant")
    s = np.asarray(s, F32)
    z = np.asarray(z).astype(np.int64)
    if s.ndim > 1 or s.shape != z.shape and z.size != 1:
        raise NotLowerable(f"scale {s.shape} and zero point {z.shape} are not per tensor "
                           "or per axis")
    if s.size == 1:
        return QParams(s.reshape(()), z.reshape(()), dtype, None)
    return QParams(s, np.broadcast_to(z.reshape(-1), s.shape).copy(), dtype, axis)


def linear_qparams(g: Graph, node: Node, scale_k: int, zp_k: int, value: str) -> QParams:
    """QuantizeLinear / DequantizeLinear parameters; `value` is the quantized side."""
    opset = g.opsets.get("", 13)
    if int(node.attr("block_size", 0) or 0):
        raise NotLowerable("blocked quantization (block_size) is not supported")
    axis = int(node.attr("axis", 1)) if opset >= 13 else None
    rank = g.type_of(value).rank
    if axis is not None and axis < 0:
        axis += rank
    q = read_qparams(graph_consts(g), node.inputs[scale_k], slot(node, zp_k),
                     g.type_of(value).dtype, axis)
    if not q.per_tensor and (axis is None or not 0 <= axis < rank
                             or g.type_of(value).shape[axis] != q.scale.size):
        raise NotLowerable(f"{q.scale.size} scales do not match axis {axis} of {value}")
    return q


def channel_layout(shape: tuple[int, ...], q: QParams) -> tuple[int, int, int]:
    """(outer, channels, inner) of a tensor walked per channel of q."""
    # math.prod keeps symbolic dims (a batch) as expressions; numpy would specialize them
    if q.per_tensor:
        return 1, 1, math.prod(shape)
    axis = q.axis or 0
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def requant_scale(x_scale: np.float32, w_scale: np.ndarray, y_scale: np.float32) -> np.ndarray:
    """QLinearConv / QLinearMatMul / QGemm (alpha 1): (x_scale * w_scale) / y_scale in
    float32, per output channel when w_scale is."""
    return ((F32(x_scale) * np.asarray(w_scale, F32)) / F32(y_scale)).astype(F32)


def average_scale(x_scale: np.float32, y_scale: np.float32, count: int) -> np.float32:
    """QLinearGlobalAveragePool / QLinearAveragePool: x_scale / (y_scale * count)."""
    return F32(F32(x_scale) / (F32(y_scale) * F32(count)))


def int_range(dtype: DType) -> tuple[int, int]:
    info = np.iinfo(dtype.numpy)
    return int(info.min), int(info.max)


def require_quant_dtype(dtype: DType, what: str) -> None:
    if dtype not in QUANT_DTYPES:
        raise NotLowerable(f"{what} is {dtype.short}; quantized tensors are uint8 or int8")
