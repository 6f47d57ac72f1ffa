"""Lowering of Conv (ONNX, 1-D and 2-D) and tinyc.Conv (Conv + fused epilogue).

ONNX attributes (auto_pad, pads, strides, dilations, group, kernel_shape) are
resolved here into a ConvShape; then:
- depthwise (every group has one input channel): the direct kernel of
  codegen/kernels/gemm/conv_direct.py, on padded planes or loading the input
  with masks (a tunable choice, conv_schedule.py);
- otherwise, per group, a GEMM  Y[co, pixel] = W[co, (ci,ky,kx)] @ im2col(X)
  with the weights packed into A panels at compile time and im2col written
  straight into packed B panels at run time; 1x1 unit-stride unpadded convs
  read X's rows directly (no im2col). Small images (7x7) run transposed,
  Y^T = im2col^T @ W^T, so the vector lanes go to channels, not to 49 pixels.
  The conv's contraction (conv_statement) is handed to the tensorizer, which
  picks the micro-kernel's intrinsic from the target's YAML sets.
tinyc.Conv's bias, residual and activation are fused into the final store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..codegen.kernels.gemm.conv_direct import GEOMETRY, DepthwiseSpec
from ..codegen.kernels.gemm.gemm import GemmSpec, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.pack import pack_a_const, pack_b_const
from ..codegen.parallel import compiled_in_sizes
from ..errors import NotLowerable
from ..ir import Node
from ..ir.sum_order import k_block
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from ..schedule import Decision
from ..tensorize.fp32 import Fp32Plan, plan_fp32_gemm
from .checks import require_elements
from .conv_schedule import schedule_depthwise
from .conv_winograd import choose_winograd, lower_winograd
from .elementwise import require_f32, shape_of
from .gemm_schedule import schedule_gemm, tuned_text
from .registry import lowers

F32_ROLES = {"Y": "float32", "X": "float32", "W": "float32"}

F32_BYTES = 4


@dataclass(frozen=True)
class ConvShape:
    """A 2-D conv's geometry (a 1-D conv has h = kh = 1). Trailing pads only
    shape ho/wo: the kernels treat everything outside the input as zero."""

    n: int
    c: int
    h: int
    w: int
    co: int
    group: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    ph: int  # leading (top) padding
    pw: int  # leading (left) padding
    ho: int
    wo: int

    @property
    def cig(self) -> int:
        return self.c // self.group

    @property
    def cog(self) -> int:
        return self.co // self.group

    @property
    def k(self) -> int:
        return self.cig * self.kh * self.kw

    @property
    def depthwise(self) -> bool:
        return self.group > 1 and self.cig == 1

    def form_text(self, transposed: bool = False) -> str:
        """The GEMM's dimensions, m x n x k."""
        m, n = (self.ho * self.wo, self.cog) if transposed else (self.cog, self.ho * self.wo)
        return f"{m}x{n}x{self.k}"

    @property
    def pointwise(self) -> bool:
        """1x1, unit stride, no padding: X's channel rows are already B."""
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0) \
            and (self.ho, self.wo) == (self.h, self.w)


def conv_shape(node: Node, x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> ConvShape:
    if len(x_shape) not in (3, 4) or len(w_shape) != len(x_shape):
        raise NotLowerable(f"only 1-D and 2-D convs are supported (input rank {len(x_shape)})")
    spatial = len(x_shape) - 2
    kernel = list(node.attr("kernel_shape", w_shape[2:]))
    strides = list(node.attr("strides", [1] * spatial))
    dilations = list(node.attr("dilations", [1] * spatial))
    pads = list(node.attr("pads", [0] * 2 * spatial))
    group = int(node.attr("group", 1))
    if list(kernel) != list(w_shape[2:]):
        raise NotLowerable(f"kernel_shape {kernel} disagrees with W's shape {w_shape}")
    if x_shape[1] % group or w_shape[0] % group or w_shape[1] * group != x_shape[1]:
        raise NotLowerable(f"group={group} does not divide channels {x_shape[1]}/{w_shape[0]}")
    sizes = list(x_shape[2:])
    axes = [_axis(sizes[i], kernel[i], strides[i], dilations[i],
                  (pads[i], pads[i + spatial]), node.attr("auto_pad", "NOTSET"))
            for i in range(spatial)]
    if spatial == 1:
        sizes, kernel, strides, dilations = [1] + sizes, [1] + kernel, [1] + strides, \
            [1] + dilations
        axes = [(0, 1)] + axes
    return ConvShape(n=x_shape[0], c=x_shape[1], h=sizes[0], w=sizes[1], co=w_shape[0],
                     group=group, kh=kernel[0], kw=kernel[1], sh=strides[0], sw=strides[1],
                     dh=dilations[0], dw=dilations[1], ph=axes[0][0], pw=axes[1][0],
                     ho=axes[0][1], wo=axes[1][1])


def _axis(size: int, k: int, stride: int, dilation: int, pads: tuple[int, int],
          auto_pad: str) -> tuple[int, int]:
    """(leading pad, output size) of one spatial axis."""
    span = (k - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + span - size)
        return (total // 2 if auto_pad == "SAME_UPPER" else total - total // 2), out
    if auto_pad == "VALID":
        pads = (0, 0)
    elif auto_pad not in ("NOTSET", ""):
        raise NotLowerable(f"unknown auto_pad {auto_pad!r}")
    return pads[0], (size + pads[0] + pads[1] - span) // stride + 1


@dataclass(frozen=True)
class FusedTail:
    """tinyc.Conv / tinyc.Gemm's epilogue operands, read from a node."""

    bias: str  # "" when absent
    residual: str
    lo: float
    hi: float

    @property
    def clip(self) -> bool:
        return self.lo > -math.inf or self.hi < math.inf

    def text(self) -> str:
        """The epilogue in a lowered node's semantics: "; + bias[co]; ...". """
        text = f"; + {self.bias}[co]" if self.bias else ""
        if self.residual:
            text += f"; + {self.residual}[n,co,y,x]"
        if self.clip:
            text += f"; clip({self.lo}, {self.hi})"
        return text


def fused_tail(node: Node, bias_slot: int = 2) -> FusedTail:
    def slot(i: int) -> str:
        return node.inputs[i] if len(node.inputs) > i else ""

    act = node.attr("activation", "") or ""
    if act == "Relu":
        lo, hi = 0.0, math.inf
    elif act == "Clip":
        lo, hi = float(node.attr("clip_min", -math.inf)), float(node.attr("clip_max", math.inf))
    elif act == "":
        lo, hi = -math.inf, math.inf
    else:
        raise NotLowerable(f"unsupported fused activation {act!r}")
    return FusedTail(slot(bias_slot), slot(3), lo, hi)


@lowers("Conv", "tinyc.Conv")
def lower_conv(node: Node, ctx: LowerContext) -> LoweredNode:
    require_f32(node, ctx)
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    s = conv_shape(node, shape_of(ctx, x), shape_of(ctx, w))
    require_elements(ctx, node, 2, int(shape_of(ctx, w)[0]), "bias")
    out_shape = shape_of(ctx, y)
    if math.prod(out_shape) != s.n * s.co * s.ho * s.wo:
        raise NotLowerable(f"output shape {out_shape} disagrees with the conv's attributes")
    tail = fused_tail(node)
    if tail.residual and shape_of(ctx, tail.residual) != out_shape:
        raise NotLowerable(f"residual {tail.residual} must have the output's shape {out_shape}")
    epi = Epilogue("row" if tail.bias else "none", bool(tail.residual), tail.clip)
    if s.depthwise:
        plan = plan_fp32_gemm(depthwise_statement(s), F32_ROLES, "W",
                              (s.cog, s.ho * s.wo, s.kh * s.kw), ctx.target, ctx.intrinsics)
        direct, decision = schedule_depthwise(ctx, node, s.n * s.co, s.ho, s.wo, s.kh * s.kw,
                                              s.sw, plan.lanes)
        calls = _depthwise(node, s, epi, tail, plan, ctx.target.threads, direct)
        planes = "the input, masked loads" if direct else "zero-padded planes"
        note = (f"direct depthwise {s.kh}x{s.kw} kernel on {planes} (channels are "
                f"a batch index: no GEMM tile, but its taps are one): {plan.step_text}, "
                f"epilogue {epi.tag}{tuned_text(decision)}")
    elif (tile := choose_winograd(node, ctx, s)) is not None:
        return lower_winograd(node, ctx, s, tail, tile)
    else:
        calls, note, plan, decision = _gemm_calls(node, ctx, s, epi, tail)
    return LoweredNode(node.name, node.qualified_op, node.outputs, calls,
                       semantics=_semantics(node, s, tail), note=note,
                       intrinsic=plan.choice.match.name if plan and plan.step else "",
                       rejected=plan.rejected if plan else (), schedule=decision)


def conv_statement(s: ConvShape) -> str:
    """The conv in index notation with canonical tensor names (padding is a bound,
    not index algebra); groups are a batch index g."""
    def tap(out: str, stride: int, k: str, dil: int) -> str:
        return f"{out}*{stride}+{k}*{dil}"

    g = "g, " if s.group > 1 else ""
    iy, ix = tap("y", s.sh, "ky", s.dh), tap("x", s.sw, "kx", s.dw)
    return f"Y[n, {g}co, y, x] += X[n, {g}ci, {iy}, {ix}] * W[{g}co, ci, ky, kx]"


def depthwise_statement(s: ConvShape) -> str:
    """Each output channel (c, j) reads input channel c: c is a batch index."""
    iy, ix = f"y*{s.sh}+ky*{s.dh}", f"x*{s.sw}+kx*{s.dw}"
    if s.cog == 1:
        return f"Y[n, c, y, x] += X[n, c, {iy}, {ix}] * W[c, ky, kx]"
    return f"Y[n, c, j, y, x] += X[n, c, {iy}, {ix}] * W[c, j, ky, kx]"


def _depthwise(node: Node, s: ConvShape, epi: Epilogue, tail: FusedTail,
               plan: Fp32Plan, threads: int, direct: bool) -> list[Call]:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    spec = DepthwiseSpec(s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, plan.lanes, epi, plan.step,
                         threads, direct)
    hp, wp = spec.padded_plane(s.ho, s.wo)
    pad = Scratch(f"{node.name or y}.pad", spec.pad_bytes(s.ho, s.wo))
    sizes = dict(N=s.n, C=s.c, mult=s.cog, H=s.h, W=s.w, ph=s.ph, pw=s.pw, Ho=s.ho, Wo=s.wo,
                 Hp=hp, Wp=wp)
    spec = replace(spec, geometry=compiled_in_sizes(tuple(sizes[k] for k in GEOMETRY), threads))
    values: dict[str, object] = dict(x=Buf(x), w=Buf(w), y=Buf(y), pad=pad, **sizes)
    values.update(_epilogue_values(tail, s, group=0))
    return [Call(spec.kernel(), spec.args(values))]


def _gemm_calls(node: Node, ctx: LowerContext, s: ConvShape, epi: Epilogue,
                tail: FusedTail) -> tuple[list[Call], str, Fp32Plan, Decision | None]:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    const_w = ctx.graph.is_const(w)
    plan = plan_fp32_gemm(conv_statement(s), F32_ROLES, "W", (s.cog, s.ho * s.wo, s.k),
                          ctx.target, ctx.intrinsics)
    if const_w and _pixels_as_rows(s, plan):
        return _transposed_gemm_calls(node, ctx, s, epi, tail)
    sched = schedule_gemm(ctx, node, plan, (s.cog, s.ho * s.wo, s.k),
                          k_block(node, s.ho * s.wo, s.k))
    plan = sched.plan
    mr = plan.mr
    spec = GemmSpec(mr, plan.nv, plan.lanes, a_src="packed" if const_w else "strided",
                    b_src="strided" if s.pointwise else "im2col", epi=epi, step=plan.step,
                    threads=ctx.target.threads, kblocked=const_w, split=sched.split,
                    prefetch=sched.prefetch)
    blk = sched.blocking()
    scratch = Scratch(f"{node.name or y}.pack", scratch_bytes(spec, blk))
    weights = ctx.graph.const(w).reshape(s.co, s.k) if const_w else None
    calls = []
    for g in range(s.group):
        values: dict[str, object] = dict(
            b=Buf(x, g * s.cig * s.h * s.w * F32_BYTES),
            c=Buf(y, g * s.cog * s.ho * s.wo * F32_BYTES), scratch=scratch,
            M=s.cog, N=s.ho * s.wo, K=s.k, ldc=s.ho * s.wo, kc=blk.kc, mc=blk.mc, nc=blk.nc,
            batch=s.n, a_bstride=0, b_bstride=s.c * s.h * s.w, c_bstride=s.co * s.ho * s.wo)
        if weights is not None:
            panels = pack_a_const(weights[g * s.cog:(g + 1) * s.cog], mr, blk.kc)
            values["a"] = Const(f"{node.name or y}.w.g{g}", panels)
        else:
            values.update(a=Buf(w, g * s.cog * s.k * F32_BYTES), sam=s.k, sak=1)
        if s.pointwise:
            values.update(sbk=s.h * s.w, sbn=1)
        else:
            values.update(_im2col_geometry(s))
        values.update(_epilogue_values(tail, s, g))
        calls.append(Call(spec.kernel(), spec.args(values)))
    how = "1x1: rows of X as B" if s.pointwise else "im2col packed into B panels"
    wsrc = "W packed at compile time" if const_w else "W packed at run time"
    note = (f"GEMM {s.form_text()}: {plan.summary}; per group ({s.group}), {how}, {wsrc}, "
            f"KC={blk.kc} NC={blk.nc}, epilogue {epi.tag}{tuned_text(sched.decision)}")
    return calls, note, plan, sched.decision


def _pixels_as_rows(s: ConvShape, plan: Fp32Plan) -> bool:
    """Vectors run along pixels (GEMM columns); a small image such as 7x7 = 49
    pixels wastes most of the last vector. Then compute Y^T = im2col^T @ W^T:
    pixels as the micro-kernel's rows, output channels along the vectors, and
    store Y transposed (column-major in that GEMM), when that wastes less."""
    pixels, channels, lanes = s.ho * s.wo, s.cog, plan.lanes
    if lanes < 16 or pixels < 7 or plan.mr < 7:  # (few registers: no 7-8 row tile)
        return False

    def padded(n: int, step: int) -> int:
        return -(-n // step) * step

    usual = padded(channels, plan.mr) * padded(pixels, lanes)
    mr = _pixel_rows(pixels)
    return padded(pixels, mr) * padded(channels, lanes) < 0.9 * usual


def _pixel_rows(pixels: int) -> int:
    """MR of the transposed GEMM: 8, or 7 when that pads less (7x7, 14x14 images);
    the A-side packers then use 7-lane vectors, which LLVM widens with masks."""
    return 7 if -(-pixels // 7) * 7 < -(-pixels // 8) * 8 else 8


def _transposed_gemm_calls(node: Node, ctx: LowerContext, s: ConvShape, epi: Epilogue,
                           tail: FusedTail) -> tuple[list[Call], str, Fp32Plan, Decision | None]:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    pixels = s.ho * s.wo
    plan = plan_fp32_gemm(conv_statement(s), F32_ROLES, "X", (pixels, s.cog, s.k),
                          ctx.target, ctx.intrinsics, rows=_pixel_rows(pixels))
    sched = schedule_gemm(ctx, node, plan, (pixels, s.cog, s.k), k_block(node, pixels, s.k))
    plan = sched.plan
    epi = Epilogue("col" if tail.bias else "none", epi.residual, epi.clip, transposed=True)
    spec = GemmSpec(plan.mr, plan.nv, plan.lanes,
                    a_src="vstrided" if s.pointwise else "im2col", b_src="packed", epi=epi,
                    step=plan.step, threads=ctx.target.threads, split=sched.split,
                    prefetch=sched.prefetch)
    blk = sched.blocking()
    scratch = Scratch(f"{node.name or y}.pack", scratch_bytes(spec, blk))
    weights = ctx.graph.const(w).reshape(s.co, s.k)
    calls = []
    for g in range(s.group):
        panels = pack_b_const(np.ascontiguousarray(weights[g * s.cog:(g + 1) * s.cog].T),
                              spec.nr)
        values: dict[str, object] = dict(
            a=Buf(x, g * s.cig * s.h * s.w * F32_BYTES), b=Const(f"{node.name or y}.wt.g{g}",
                                                                 panels),
            c=Buf(y, g * s.cog * pixels * F32_BYTES), scratch=scratch,
            M=pixels, N=s.cog, K=s.k, ldc=pixels, kc=blk.kc, mc=blk.mc, nc=blk.nc,
            batch=s.n, a_bstride=s.c * s.h * s.w, b_bstride=0, c_bstride=s.co * pixels)
        if s.pointwise:
            values.update(sam=1, sak=s.h * s.w)
        else:
            values.update(_im2col_geometry(s))
        values.update(_epilogue_values(tail, s, g))
        if tail.bias:
            values["ldbias"] = 0
        calls.append(Call(spec.kernel(), spec.args(values)))
    note = (f"GEMM transposed for a small image, {s.form_text(transposed=True)}: "
            f"{plan.summary}; {pixels} pixels as {spec.mr}-row panels "
            f"({'rows of X' if s.pointwise else 'im2col'}), W^T packed at compile time in "
            f"{spec.nr}-channel panels, per group ({s.group}), KC={blk.kc}, epilogue {epi.tag}"
            f"{tuned_text(sched.decision)}")
    return calls, note, plan, sched.decision


def _im2col_geometry(s: ConvShape) -> dict[str, object]:
    return dict(H=s.h, W=s.w, kh=s.kh, kw=s.kw, sh=s.sh, sw=s.sw, dh=s.dh, dw=s.dw, ph=s.ph,
                pw=s.pw, Wo=s.wo)


def _epilogue_values(tail: FusedTail, s: ConvShape, group: int) -> dict[str, object]:
    out: dict[str, object] = {}
    plane = s.ho * s.wo
    if tail.bias:
        out.update(bias=Buf(tail.bias, group * s.cog * F32_BYTES), ldbias=1, bias_bstride=0)
    if tail.residual:
        out.update(res=Buf(tail.residual, group * s.cog * plane * F32_BYTES), ldres=plane,
                   res_bstride=s.co * plane)
    if tail.clip:
        out.update(lo=tail.lo, hi=tail.hi)
    return out


def _semantics(node: Node, s: ConvShape, tail: FusedTail) -> str:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    ci = f"g*{s.cig}+ci" if s.group > 1 else "ci"
    text = (f"{y}[n,co,y,x] += {x}[n,{ci},y*{s.sh}+ky*{s.dh}-{s.ph},x*{s.sw}+kx*{s.dw}-{s.pw}]"
            f" * {w}[co,ci,ky,kx]")
    return text + tail.text()

