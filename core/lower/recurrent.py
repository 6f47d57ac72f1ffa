"""Lowerings of LSTM, GRU and RNN: one call of codegen/kernels/ops/rnn.py's sequence
kernel per direction. Constant weights are transposed and packed into GEMM
panels at compile time; weights given at run time are packed by the kernel.

The kernel keeps the hidden (and cell) state where Y_h (Y_c) lives, so the final
states need no copy; without those outputs the states live in scratch. Y, Y_h,
Y_c and X may be in either `layout`: strides say where row (t, b) is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.gemm.gemm import choose_blocking, default_tile, scratch_bytes
from ..codegen.kernels.gemm.pack import pack_b_const
from ..codegen.kernels.ops.rnn import ACTIVATION_COUNT, GATES, Activation, CellSpec
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .elementwise import require_f32, shape_of
from .registry import lowers

F32_MAX = float(np.finfo(np.float32).max)

# ONNX activation name -> (kernel op, default alpha and beta where it takes them); the
# defaults are the ONNX operators' (onnxruntime takes 0 for Affine, ScaledTanh and
# ThresholdedRelu when the attribute lists run out)
_ACTIVATIONS: dict[str, tuple[str, tuple[float, ...]]] = {
    "sigmoid": ("sigmoid", ()), "tanh": ("tanh", ()), "relu": ("relu", ()),
    "affine": ("affine", (1.0, 0.0)), "leakyrelu": ("leaky_relu", (0.01,)),
    "thresholdedrelu": ("thresholded_relu", (1.0,)), "scaledtanh": ("scaled_tanh", (1.0, 1.0)),
    "hardsigmoid": ("hard_sigmoid", (0.2, 0.5)), "elu": ("elu", (1.0,)),
    "softsign": ("softsign", ()), "softplus": ("softplus", ()),
}
_DEFAULT_ACTIVATIONS = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"],
                        "rnn": ["Tanh"]}


def activations(node: Node, kind: str, dirs: int) -> list[tuple[Activation, ...]]:
    """Per direction, the cell's activations with their alpha/beta: the attribute
    lists are consumed in order by the functions that take each parameter."""
    names = list(node.attr("activations", None) or _DEFAULT_ACTIVATIONS[kind] * dirs)
    per_dir = ACTIVATION_COUNT[kind]
    if len(names) == per_dir:
        names *= dirs  # one set for both directions
    if len(names) < per_dir * dirs:
        raise NotLowerable(f"{len(names)} activations for {dirs} direction(s) of {kind.upper()}")
    names = names[:per_dir * dirs]  # RNN's schema default lists Tanh twice, even forward
    alphas = list(node.attr("activation_alpha", None) or [])
    betas = list(node.attr("activation_beta", None) or [])
    resolved: list[Activation] = []
    for name in names:
        if name.lower() not in _ACTIVATIONS:
            raise NotLowerable(f"activation {name!r}")
        op, defaults = _ACTIVATIONS[name.lower()]
        params = list(defaults)
        for k, source in enumerate((alphas, betas)[:len(defaults)]):
            if source:
                params[k] = float(source.pop(0))
        resolved.append((op, tuple(params)))
    return [tuple(resolved[d * per_dir:(d + 1) * per_dir]) for d in range(dirs)]


@dataclass(frozen=True)
class _Layout:
    """Element strides of row (t, b) in X's projections, Y and the states."""

    seq: int
    batch: int
    dirs: int
    hidden: int
    batch_first: bool  # layout = 1

    def xg_strides(self) -> tuple[int, int]:  # in rows of the projection
        return (1, self.seq) if self.batch_first else (self.batch, 1)

    def y(self, d: int) -> tuple[int, int, int]:
        """(byte offset of direction d, t stride, b stride)."""
        s, bt, nd, h = self.seq, self.batch, self.dirs, self.hidden
        if self.batch_first:  # [batch, seq, dirs, hidden]
            return 4 * d * h, nd * h, s * nd * h
        return 4 * d * bt * h, nd * bt * h, h  # [seq, dirs, batch, hidden]

    def state(self, d: int) -> tuple[int, int]:
        """(byte offset of direction d, b stride) in Y_h / Y_c / initial states."""
        if self.batch_first:  # [batch, dirs, hidden]
            return 4 * d * self.hidden, self.dirs * self.hidden
        return 4 * d * self.batch * self.hidden, self.hidden  # [dirs, batch, hidden]


@lowers("LSTM", "GRU", "RNN")
def lower_recurrent(node: Node, ctx: LowerContext) -> LoweredNode:
    kind = node.op.lower()
    inputs = list(node.inputs) + [""] * 8
    x, w, r, bias, lens, init_h, init_c, peep = inputs[:8]
    require_f32(node, ctx, [x, w, r] + [n for n in (bias, init_h, init_c, peep) if n])
    if lens and ctx.graph.type_of(lens).dtype != DType.int32:
        raise NotLowerable("sequence_lens must be int32")
    direction = node.attr("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    hidden = int(node.attr("hidden_size", 0)) or shape_of(ctx, r)[-1]
    layout = int(node.attr("layout", 0))
    xs = shape_of(ctx, x)
    seq, batch = (xs[1], xs[0]) if layout else (xs[0], xs[1])
    geo = _Layout(seq, batch, dirs, hidden, bool(layout))
    acts = activations(node, kind, dirs)
    clip = node.attr("clip", None)
    outs = list(node.outputs) + ["", "", ""]
    y, y_h, y_c = outs[:3]
    lens_arg = Buf(lens) if lens else Const("lens", np.full(batch, seq, np.int32))
    zeros = Const("zeros", np.zeros(GATES[kind] * hidden, np.float32))
    calls = []
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        spec, weights = _cell(ctx, node, kind, acts[d], d, geo, bool(y), zeros)
        values = dict(weights, x=Buf(x), lens=lens_arg, zeros=zeros, reverse=int(reverse),
                      clip=F32_MAX if clip is None else float(clip),
                      seq=seq, batch=batch, input=xs[2], hidden=hidden)
        values.update(_states(geo, d, init_h, y_h, "h", zeros))
        if kind == "lstm":
            values.update(_states(geo, d, init_c, y_c, "c", zeros))
        if y:
            offset, t_stride, b_stride = geo.y(d)
            values.update(y=Buf(y, offset), y_tstride=t_stride, y_bstride=b_stride)
        values.update(_work(ctx, spec, geo, xs[2], d))
        calls.append(Call(spec.kernel(), spec.args(values)))
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=_semantics(kind, spec),
                       note=f"{calls[0].kernel.name}: per direction one input-projection "
                            f"GEMM, then per step a [{batch}x{hidden}] @ R^T GEMM and "
                            f"vector gates over {hidden}")


def _cell(ctx: LowerContext, node: Node, kind: str, acts: tuple[Activation, ...], d: int,
          geo: _Layout, write_y: bool, zeros: Const) -> tuple[CellSpec, dict[str, object]]:
    """The kernel's spec and its weights for direction d."""
    inputs = list(node.inputs) + [""] * 8
    w, r, bias, peep = inputs[1], inputs[2], inputs[3], inputs[7]
    gh = GATES[kind] * geo.hidden
    lanes = ctx.target.f32_lanes
    runtime = not (ctx.graph.is_const(w) and ctx.graph.is_const(r))
    spec = CellSpec(kind, acts, lanes, default_tile(lanes, geo.seq * geo.batch),
                    default_tile(lanes, geo.batch), peephole=kind == "lstm" and bool(peep),
                    input_forget=kind == "lstm" and bool(node.attr("input_forget", 0)),
                    linear_before_reset=kind == "gru" and bool(node.attr("linear_before_reset", 0)),
                    write_y=write_y, runtime_weights=runtime)
    n_in = shape_of(ctx, w)[-1]
    # B = [Wb, Rb] per direction; P = [Pi, Po, Pf]
    values: dict[str, object] = (
        {"bias": Buf(bias, 4 * d * 2 * gh), "rbias": Buf(bias, 4 * (d * 2 * gh + gh))} if bias
        else {"bias": zeros, "rbias": zeros})
    if spec.peephole:
        values["peep"] = Buf(peep, 4 * d * 3 * geo.hidden)
    if runtime:
        values.update(w=Buf(w, 4 * d * gh * n_in), r=Buf(r, 4 * d * gh * geo.hidden))
    else:
        values.update(_packed_weights(ctx, spec, w, r, d, geo.hidden))
    return spec, values


def _packed_weights(ctx: LowerContext, spec: CellSpec, w: str, r: str, d: int,
                    hidden: int) -> dict[str, Const]:
    """W^T and R^T of direction d as B panels (a default GRU's R in two parts)."""
    w_d = ctx.graph.const(w).astype(np.float32)[d]  # [gates*hidden, input]
    r_d = ctx.graph.const(r).astype(np.float32)[d]  # [gates*hidden, hidden]
    tag = f"dir{d}"
    packed = {"w": Const(f"{tag}.w", pack_b_const(w_d.T, spec.nr))}
    if spec.split_reset:
        packed["r"] = Const(f"{tag}.r_zr", pack_b_const(r_d[:2 * hidden].T, spec.nr))
        packed["r_h"] = Const(f"{tag}.r_h", pack_b_const(r_d[2 * hidden:].T, spec.nr))
    else:
        packed["r"] = Const(f"{tag}.r", pack_b_const(r_d.T, spec.nr))
    return packed


def _states(geo: _Layout, d: int, init: str, out: str, which: str,
            zeros: Const) -> dict[str, object]:
    """Initial state (zeros if none, read with stride 0) and where the state lives."""
    offset, b_stride = geo.state(d)
    values: dict[str, object] = (
        {f"init_{which}": Buf(init, offset), f"init_{which}_stride": b_stride} if init else
        {f"init_{which}": zeros, f"init_{which}_stride": 0})
    if out:
        values.update({which: Buf(out, offset), f"{which}_stride": b_stride})
    else:
        values.update({which: Scratch(f"dir{d}.{which}", 4 * geo.batch * geo.hidden),
                       f"{which}_stride": geo.hidden})
    return values


def _work(ctx: LowerContext, spec: CellSpec, geo: _Layout, n_in: int,
          d: int) -> dict[str, object]:
    """Scratch buffers and GEMM blockings of one direction."""
    gh = spec.gates * geo.hidden
    rows = geo.seq * geo.batch
    x_blk = choose_blocking(spec.x_gemm, rows, gh, n_in)
    h_blk = choose_blocking(spec.h_gemm, geo.batch, gh, geo.hidden)
    pack = max(scratch_bytes(spec.x_gemm, x_blk), scratch_bytes(spec.h_gemm, h_blk), 64)
    tag = f"dir{d}"
    t_stride, b_stride = geo.xg_strides()
    values: dict[str, object] = dict(
        xg=Scratch(f"{tag}.xg", 4 * rows * gh), rec=Scratch(f"{tag}.rec", 4 * geo.batch * gh),
        pack=Scratch(f"{tag}.pack", pack), xg_tstride=t_stride, xg_bstride=b_stride,
        x_kc=x_blk.kc, x_mc=x_blk.mc, x_nc=x_blk.nc, h_kc=h_blk.kc, h_mc=h_blk.mc,
        h_nc=h_blk.nc)
    if spec.split_reset:
        values["rh"] = Scratch(f"{tag}.rh", 4 * geo.batch * geo.hidden)
    if spec.runtime_weights:
        values["w_packed"] = Scratch(f"{tag}.w_packed", 4 * _panel_floats(spec, gh, n_in))
        zr = 2 * geo.hidden if spec.split_reset else gh
        r_floats = _panel_floats(spec, zr, geo.hidden) + _panel_floats(spec, gh - zr, geo.hidden)
        values["r_packed"] = Scratch(f"{tag}.r_packed", 4 * r_floats)
    return values


def _panel_floats(spec: CellSpec, n: int, k: int) -> int:
    """Size of a K x N matrix packed in B panels."""
    return -(-n // spec.nr) * spec.nr * k


def _semantics(kind: str, spec: CellSpec) -> str:
    f = ", ".join(op for op, _ in spec.activations)
    if kind == "lstm":
        return (f"activations ({f}): i,o,f = f(x W^T + h R^T + b); c = f*c + i*g(.); "
                "h = o * h(c), per time step")
    if kind == "gru":
        return f"activations ({f}): z,r = f(.); n = g(x Wn^T + r * (h Rn^T)); " \
               "h = (1 - z) n + z h, per time step"
    return f"h = {f}(x W^T + h R^T + b), per time step"

