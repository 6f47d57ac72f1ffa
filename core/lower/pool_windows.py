"""ONNX's pooling windows, per spatial axis: auto_pad, ceil_mode, count_include_pad
and dilations resolved at compile time into what the kernels walk
(codegen/kernels/ops/pool.py and pool_argmax.py), and the checks of the
attributes that define them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, NotLowerable
from ..ir import Node


@dataclass(frozen=True)
class AxisWindows:
    """Pooling windows along one spatial axis."""

    size: int  # input extent
    kernel: int
    stride: int
    dilation: int
    pad_begin: int
    pad_end: int
    out: int

    def taps(self, o: int) -> range:
        """Input indices the window of output o covers, padding included."""
        start = o * self.stride - self.pad_begin
        return range(start, start + self.kernel * self.dilation, self.dilation)

    def inv_counts(self, include_pad: bool) -> np.ndarray:
        """1 / the number of taps an average divides by (ONNX: padding counts only
        with count_include_pad, and never the extra taps ceil_mode adds)."""
        lo, hi = (-self.pad_begin, self.size + self.pad_end) if include_pad else (0, self.size)
        counts = [sum(lo <= i < hi for i in self.taps(o)) for o in range(self.out)]
        return 1.0 / np.maximum(np.array(counts, np.float32), 1.0)


def axis_windows(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int],
                 auto_pad: str, ceil_mode: bool, declared: int | None = None) -> AxisWindows:
    """The windows ONNX defines; `declared` is the output extent the graph states,
    accepted when it is what ceil_mode gives before onnxruntime's (and PyTorch's)
    rule that the last window start inside the input: onnx shape inference omits
    that rule, so graphs may carry either extent."""
    span = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + span - size)
        begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        return AxisWindows(size, kernel, stride, dilation, begin, total - begin, out)
    if auto_pad == "VALID":
        pads = (0, 0)
    elif auto_pad not in ("NOTSET", ""):
        raise ModelError(f"unknown auto_pad {auto_pad!r}")
    room = size + pads[0] + pads[1] - span
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pads[0] and declared != out:
        out -= 1  # the last window must start inside the input or its leading padding
    return AxisWindows(size, kernel, stride, dilation, pads[0], pads[1], out)


def pool_windows(node: Node, shape: tuple[int, ...],
                 out_shape: tuple[int, ...]) -> list[AxisWindows]:
    """The windows of each spatial axis, from the node's attributes (checked: a
    malformed one is a ModelError) and the output extents the graph declares."""
    rank = len(shape) - 2
    if rank < 1 or len(out_shape) != len(shape):
        raise ModelError(f"{node.op} node '{node.name}': input of shape {list(shape)} and "
                         f"output of shape {list(out_shape)}: pooling needs N, C and "
                         "at least one spatial axis in both")
    kernel = int_attr(node, "kernel_shape", None, rank, minimum=1)
    strides = int_attr(node, "strides", [1] * rank, rank, minimum=1)
    dilations = int_attr(node, "dilations", [1] * rank, rank, minimum=1)
    pads = int_attr(node, "pads", [0] * 2 * rank, 2 * rank, minimum=0)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ModelError(f"{node.op} node '{node.name}': unknown auto_pad {auto_pad!r}")
    ceil_mode = bool(node.attr("ceil_mode", 0))
    axes = [axis_windows(shape[2 + a], kernel[a], strides[a], dilations[a],
                         (pads[a], pads[rank + a]), auto_pad, ceil_mode, out_shape[2 + a])
            for a in range(rank)]
    expected = (*shape[:2], *[a.out for a in axes])
    if expected != tuple(out_shape):
        raise NotLowerable(f"output shape {out_shape} differs from the pool's {expected}")
    return axes


def int_attr(node: Node, name: str, default: list[int] | None, count: int,
          minimum: int) -> list[int]:
    """Attribute `name`: `count` integers, each at least `minimum`."""
    value = node.attr(name, default)
    if value is None:
        raise ModelError(f"{node.op} node '{node.name}' has no {name} attribute")
    value = [int(v) for v in value]
    if len(value) != count:
        raise ModelError(f"{node.op} node '{node.name}': {name} {value} has {len(value)} "
                         f"values, the input's {count // (2 if name == 'pads' else 1)} "
                         f"spatial axes need {count}")
    if any(v < minimum for v in value):
        raise ModelError(f"{node.op} node '{node.name}': {name} {value} holds a value "
                         f"below {minimum}")
    return value


def vector_axis_layout(axes: list[AxisWindows]) -> list[AxisWindows]:
    """The axes as the kernels walk them: at least one outer axis before the vector
    axis (a 1-D pool is a 2-D one over planes one row high)."""
    return [AxisWindows(1, 1, 1, 1, 0, 0, 1), *axes] if len(axes) == 1 else axes


def kernel_geometry(planes: int, axes: list[AxisWindows]) -> dict[str, int]:
    """The i64 arguments of codegen's pool kernels (pool.geometry(len(axes) - 1))."""
    *outer, cols = axes
    g = dict(planes=planes, W=cols.size, OW=cols.out, kw=cols.kernel, dw=cols.dilation,
             pw=cols.pad_begin)
    for a, ax in enumerate(outer):
        g.update({f"H{a}": ax.size, f"OH{a}": ax.out, f"kh{a}": ax.kernel, f"sh{a}": ax.stride,
                  f"dh{a}": ax.dilation, f"ph{a}": ax.pad_begin})
    return g
