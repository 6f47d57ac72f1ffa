"""Lowering of ConvTranspose (1-D, 2-D, 3-D) and Col2Im.

ConvTranspose, per group g, is the standard two-step (as onnxruntime / MLAS):
  cols[(co, tap), pixel] = W_g^T @ X_g     the fp32 GEMM: M = C_out/g * taps,
                                           N = input pixels, K = C_in/g
  Y[co] = bias[co] + col2im(cols[co])      codegen/kernels/ops/col2im.py
A constant W is packed at compile time (conv_transpose_gemm.py, which also
turns the GEMM around for inputs of a few pixels). The GEMM runs every
batch item in one call (its batch loop), so `cols` holds one group of every
item: N * C_out/g * taps * pixels floats. One input channel per group
(depthwise, or C_in = 1) skips the GEMM: its K would be 1, so col2im reads X
directly and scales each tap by its weight.

ONNX's output geometry (auto_pad, output_shape, output_padding) is resolved
here per axis into an output size and a leading pad, as the spec states it:
an explicit output_shape overrides pads, and a size beyond what the input
reaches is zeros (plus bias) at the end. onnxruntime agrees except where SAME
padding comes out negative (transpose_axis).

Col2Im is the col2im kernel alone: its input is already `cols`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.ops import col2im as K
from ..errors import ModelError, NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, ErrorSite, LowerContext, LoweredNode, Scratch
from .checks import require_elements
from .conv import FusedTail, fused_tail
from .conv_transpose_gemm import F32_BYTES, group_gemms
from .elementwise import require_f32, shape_of
from .registry import lowers


@dataclass(frozen=True)
class Scatter:
    """A col2im geometry over 3 axes (d, h, w); 1-D and 2-D lead with unit axes."""

    inp: tuple  # input (block grid) sizes
    out: tuple
    kernel: tuple
    strides: tuple
    dilations: tuple
    pads: tuple  # leading pads

    @property
    def taps(self) -> int:
        return math.prod(self.kernel)

    @property
    def in_plane(self):
        return self.inp[0] * self.inp[1] * self.inp[2]

    @property
    def out_plane(self):
        return self.out[0] * self.out[1] * self.out[2]

    def values(self) -> dict[str, object]:
        names = ("Di", "Hi", "Wi"), ("Do", "Ho", "Wo"), ("kd", "kh", "kw"), \
            ("sd", "sh", "sw"), ("dd", "dh", "dw"), ("pd", "ph", "pw")
        fields = self.inp, self.out, self.kernel, self.strides, self.dilations, self.pads
        return {n: v for ns, vs in zip(names, fields, strict=True)
                for n, v in zip(ns, vs, strict=True)}

    def call(self, src: Buf | Scratch, y: Buf, bias: Buf | Const, wt: Buf | Const | None,
             planes, channels: int, ychannels: int, mult: int = 1,
             tail: tuple[Buf | None, FusedTail | None] = (None, None)) -> Call:
        """tail: tinyc.ConvTranspose's residual (at y's offset) and clip."""
        res, clip = tail
        clip = clip if clip is not None and clip.clip else None
        kernel = K.col2im_kernel(K.x_stride_variant(self.strides[2]), wt is not None,
                                 res is not None, clip is not None)
        values = self.values() | dict(planes=planes, channels=channels, ychannels=ychannels,
                                      mult=mult)
        ptrs = [src, y, bias] + [a for a in (wt, res) if a is not None]
        bounds = (clip.lo, clip.hi) if clip is not None else ()
        return Call(kernel, (*ptrs, *[values[n] for n in K.GEOMETRY], *bounds))

    def x_loop(self) -> str:
        sx = K.x_stride_variant(self.strides[2])
        return ("vectors along x" if sx == 1 else f"vectors along x spread {sx}-fold"
                if sx else "scalar along x (strided)")

    def text(self) -> str:
        return (f"kernel {'x'.join(map(str, self.kernel))}, strides {list(self.strides)}, "
                f"dilations {list(self.dilations)}, leading pads {list(self.pads)}")


def _unit_lead(values: list, rank: int, one: int) -> tuple:
    return tuple([one] * (3 - rank) + list(values))


def transpose_axis(size, k: int, s: int, d: int, pads: tuple[int, int], out_pad: int,
                   auto_pad: str, out_size) -> tuple[object, object]:
    """(leading pad, output size) of one ConvTranspose axis, per the ONNX spec."""
    full = s * (size - 1) + out_pad + (k - 1) * d + 1  # output reached with no padding
    same = auto_pad in ("SAME_UPPER", "SAME_LOWER")
    if out_size is None and not same:
        if auto_pad == "VALID":
            pads = (0, 0)
        elif auto_pad not in ("NOTSET", ""):
            raise NotLowerable(f"unknown auto_pad {auto_pad!r}")
        return pads[0], full - pads[0] - pads[1]
    target = out_size if out_size is not None else size * s
    total = full - target
    if out_size is not None and total < 0 and -total >= s:
        raise ModelError(f"ConvTranspose output_shape {out_size} is inconsistent with an "
                         f"input of {size} (stride {s}, kernel {k}, dilation {d}: at most "
                         f"{full + s - 1})")
    if not same and total < 0:
        total = 0  # the output reaches past the input's last tap: zeros (bias) there
    # SAME with a kernel shorter than the stride: a negative total, split by floor
    # division as onnx.reference does (onnxruntime instead shrinks the output
    # below input * stride, against the spec and shape inference)
    return (total // 2 if auto_pad == "SAME_UPPER" else total - total // 2), target


def _text_attr(node: Node, key: str, default: str) -> str:
    v = node.attr(key, default)
    return v.decode() if isinstance(v, bytes) else v


def transpose_geometry(node: Node, x_shape: tuple, w_shape: tuple) -> Scatter:
    rank = len(x_shape) - 2
    if rank not in (1, 2, 3) or len(w_shape) != len(x_shape):
        raise NotLowerable(f"ConvTranspose of input rank {len(x_shape)} and weight rank "
                           f"{len(w_shape)}: 1-D, 2-D and 3-D are supported")
    kernel = [int(k) for k in w_shape[2:]]
    if min(kernel) < 1 or int(x_shape[1]) < 1:
        raise NotLowerable(f"ConvTranspose with an empty kernel {kernel} or no input channels")
    if list(node.attr("kernel_shape", kernel)) != kernel:
        raise ModelError(f"ConvTranspose '{node.name}': kernel_shape "
                         f"{list(node.attr('kernel_shape'))} disagrees with W's shape "
                         f"{list(w_shape)}")
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    pads = list(node.attr("pads", [0] * 2 * rank))
    out_pads = list(node.attr("output_padding", [0] * rank))
    out_shape = node.attr("output_shape", None)
    out_shape = list(out_shape) if out_shape is not None else [None] * rank
    if any(len(v) != n for v, n in ((strides, rank), (dilations, rank), (pads, 2 * rank),
                                    (out_pads, rank), (out_shape, rank))):
        raise ModelError(f"ConvTranspose '{node.name}': an attribute's length does not "
                         f"match the {rank} spatial axes")
    if any(p < 0 for p in out_pads):
        raise ModelError(f"ConvTranspose '{node.name}': negative output_padding {out_pads}")
    auto_pad = _text_attr(node, "auto_pad", "NOTSET")
    axes = [transpose_axis(x_shape[2 + i], kernel[i], strides[i], dilations[i],
                           (pads[i], pads[rank + i]), out_pads[i], auto_pad, out_shape[i])
            for i in range(rank)]
    return Scatter(_unit_lead(x_shape[2:], rank, 1), _unit_lead([a[1] for a in axes], rank, 1),
                   _unit_lead(kernel, rank, 1), _unit_lead(strides, rank, 1),
                   _unit_lead(dilations, rank, 1), _unit_lead([a[0] for a in axes], rank, 0))


@lowers("ConvTranspose", "tinyc.ConvTranspose")
def lower_conv_transpose(node: Node, ctx: LowerContext) -> LoweredNode:
    """tinyc.ConvTranspose: with fuse_epilogue's residual and activation
    (conv.py's FusedTail), applied by col2im plane by plane."""
    require_f32(node, ctx)
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    x_shape, w_shape = shape_of(ctx, x), shape_of(ctx, w)
    geo = transpose_geometry(node, x_shape, w_shape)
    group = int(node.attr("group", 1))
    n, c = x_shape[0], x_shape[1]
    if group < 1 or c % group or w_shape[0] != c:
        raise ModelError(f"ConvTranspose '{node.name}': W {list(w_shape)} does not fit "
                         f"{c} input channels in group={group}")
    cig, cog = c // group, int(w_shape[1])
    co = cog * group
    rank = len(x_shape) - 2
    want = (n, co, *geo.out[3 - rank:])
    if any(v < 1 for v in geo.out[3 - rank:]):
        raise ModelError(f"ConvTranspose '{node.name}': its attributes give an empty output "
                         f"{list(want)}")
    if tuple(shape_of(ctx, y)) != want:
        raise NotLowerable(f"output shape {list(shape_of(ctx, y))} disagrees with the "
                           f"attributes' {list(want)}")
    require_elements(ctx, node, 2, co, "bias")
    tail = fused_tail(node)
    if tail.residual and tuple(shape_of(ctx, tail.residual)) != want:
        raise NotLowerable(f"residual {tail.residual} must have the output's shape {want}")
    tag = node.name or y
    has_bias = len(node.inputs) > 2 and node.inputs[2]
    if cig == 1:
        bias = Buf(node.inputs[2]) if has_bias else _zeros(tag, co)
        wt = Const(f"{tag}.w", np.ascontiguousarray(ctx.graph.const(w).ravel())) \
            if ctx.graph.is_const(w) else Buf(w)
        res = Buf(tail.residual) if tail.residual else None
        calls = [geo.call(Buf(x), Buf(y), bias, wt, n * co, co, co, mult=cog,
                          tail=(res, tail))]
        note = (f"direct col2im (one input channel per group: no GEMM), {geo.text()}; "
                f"{geo.x_loop()}")
        return LoweredNode(node.name, node.op, node.outputs, calls,
                           semantics=_semantics(node, geo, cig), note=note)
    return _gemm_lowering(node, ctx, geo, (n, c, co, group),
                          Buf(node.inputs[2]) if has_bias else None, tail)


def _zeros(tag: str, channels) -> Const:
    """The bias of a col2im without one."""
    return Const(f"{tag}.zeros", np.zeros(int(channels), np.float32))


def _gemm_lowering(node: Node, ctx: LowerContext, geo: Scatter, dims: tuple,
                   bias: Buf | None, tail: FusedTail) -> LoweredNode:
    """Per group: the GEMM into `cols` (conv_transpose_gemm.py), then col2im."""
    y = node.outputs[0]
    n, c, co, group = dims
    cog, tag = co // group, node.name or y
    cols = Scratch(f"{tag}.cols", F32_BYTES * n * cog * geo.taps * geo.in_plane)
    gemm = group_gemms(node, ctx, dims, geo.taps, geo.in_plane, cols)
    zeros = _zeros(tag, cog) if bias is None else None
    calls = []
    for g, gemm_call in enumerate(gemm.calls):
        group_bias = Buf(bias.value, g * cog * F32_BYTES) if bias is not None else zeros
        offset = g * cog * geo.out_plane * F32_BYTES
        res = Buf(tail.residual, offset) if tail.residual else None
        calls += [gemm_call, geo.call(cols, Buf(y, offset), group_bias, None, n * cog, cog, co,
                                      tail=(res, tail))]
    plan = gemm.sched.plan
    chosen = plan.choice.match.name if plan.choice and plan.step and plan.choice.match else ""
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=_semantics(node, geo, c // group),
                       note=f"{gemm.note}; then col2im, {geo.text()}, {geo.x_loop()}",
                       intrinsic=chosen, rejected=plan.rejected, schedule=gemm.sched.decision)


def _semantics(node: Node, geo: Scatter, cig: int) -> str:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    ci = f"g*{cig}+ci" if int(node.attr("group", 1)) > 1 else "ci"
    at = ",".join(f"i{a}*{s}+k{a}*{d}-{p}" for a, s, d, p in
                  zip("zyx", geo.strides, geo.dilations, geo.pads, strict=True))
    text = f"{y}[n,co,{at}] += {x}[n,{ci},iz,iy,ix] * {w}[{ci},co,kz,ky,kx]"
    if len(node.inputs) > 2 and node.inputs[2]:
        text += f"; + {node.inputs[2]}[co]"
    tail = fused_tail(node)
    if tail.residual:
        text += f"; + {tail.residual}[n,co,...]"
    if tail.clip:
        text += f"; clip({tail.lo}, {tail.hi})"
    return text


@lowers("Col2Im")
def lower_col2im(node: Node, ctx: LowerContext) -> LoweredNode:
    """A constant block_shape fixes the geometry here; a run-time one is read and
    checked by the kernel (col2im_block_kernel). A run-time image_shape must be
    the output's compiled spatial shape (shape_checks.py checks it)."""
    require_f32(node, ctx, [node.inputs[0], node.outputs[0]])
    x, image_in, block_in, y = *node.inputs[:3], node.outputs[0]
    x_shape, y_shape = shape_of(ctx, x), shape_of(ctx, y)
    rank = len(y_shape) - 2
    if rank not in (1, 2, 3) or len(x_shape) != 3:
        raise NotLowerable(f"Col2Im of input {list(x_shape)} to {list(y_shape)}: 1 to 3 "
                           f"spatial axes are supported")
    image = [int(v) for v in ctx.graph.const(image_in).ravel()] \
        if ctx.graph.is_const(image_in) else [int(d) for d in y_shape[2:]]
    n, c = y_shape[0], y_shape[1]
    if len(image) != rank or tuple(y_shape) != (n, c, *image) or x_shape[0] != n \
            or x_shape[1] % c:
        raise ModelError(f"Col2Im '{node.name}': output {list(y_shape)} does not fit image "
                         f"{image} and input {list(x_shape)}")
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    pads = list(node.attr("pads", [0] * 2 * rank))
    if not ctx.graph.is_const(block_in):
        return _col2im_runtime_block(node, (x_shape, y_shape), strides, dilations, pads)
    block = [int(v) for v in ctx.graph.const(block_in).ravel()]
    grid = [(image[i] + pads[i] + pads[rank + i] - (block[i] - 1) * dilations[i] - 1)
            // strides[i] + 1 for i in range(rank)]
    taps = math.prod(block)
    if len(block) != rank or x_shape[1] != c * taps or x_shape[2] != math.prod(grid) \
            or min(grid) < 1 or min(block) < 1:
        raise ModelError(f"Col2Im '{node.name}': input {list(x_shape)} is not [N, C*{taps}, "
                         f"{math.prod(grid)}] for image {image}, block {block}")
    geo = Scatter(_unit_lead(grid, rank, 1), _unit_lead(image, rank, 1),
                  _unit_lead(block, rank, 1), _unit_lead(strides, rank, 1),
                  _unit_lead(dilations, rank, 1), _unit_lead(pads[:rank], rank, 0))
    call = geo.call(Buf(x), Buf(y), _zeros(node.name or y, c), None, n * c, c, c)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=_col2im_semantics(node, taps),
                       note=f"col2im over a {'x'.join(map(str, grid))} block grid, {geo.text()}")


def _col2im_runtime_block(node: Node, shapes: tuple, strides: list, dilations: list,
                          pads: list) -> LoweredNode:
    (x_shape, y_shape), rank = shapes, len(shapes[1]) - 2
    x, block, y = node.inputs[0], node.inputs[2], node.outputs[0]
    n, c = y_shape[0], y_shape[1]
    values = dict(planes=n * c, channels=c, taps=x_shape[1] // c, blocks=x_shape[2],
                  **dict(zip(("Do", "Ho", "Wo"), _unit_lead(y_shape[2:], rank, 1),
                             strict=True)))
    for names, v, one in ((("sd", "sh", "sw"), strides, 1), (("dd", "dh", "dw"), dilations, 1),
                          (("pd", "ph", "pw"), pads[:rank], 0),
                          (("qd", "qh", "qw"), pads[rank:], 0)):
        values.update(zip(names, _unit_lead(v, rank, one), strict=True))
    kernel = K.col2im_block_kernel(rank, K.x_stride_variant(strides[-1]))
    site = ErrorSite(f"Col2Im node '{node.name}': block_shape '{block}' (each size must fit "
                     f"the padded image, and the sizes must give the input's "
                     f"{x_shape[1] // c} rows per channel and {x_shape[2]} blocks)")
    call = Call(kernel, (site, Buf(block), Buf(x), Buf(y), _zeros(node.name or y, c),
                         *[values[k] for k in K.BLOCK_GEOMETRY]))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=_col2im_semantics(node, "prod(block)"),
                       note=f"{kernel.name}: block_shape read and checked at run time, "
                            f"then col2im")


def _col2im_semantics(node: Node, taps) -> str:
    x, y = node.inputs[0], node.outputs[0]
    return f"{y}[n,c,...] = sum over blocks of {x}[n,c*{taps}+tap,block]"
