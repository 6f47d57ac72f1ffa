"""Recurrent layers (LSTM, GRU, RNN): one kernel call runs one direction of a layer.

    xg = X @ W^T + bias                  one tall GEMM over every time step
    H, C = initial states
    for each step s:
        rec = H @ R^T                      the GEMM again, with M = batch
        for each batch row b, at its own time t (sequence_lens, direction):
            gates from xg[t, b] + rec[b] -> H[b] (and C[b]); Y[t, b] = H[b]

Both products call the shared fp32 GEMM driver (kernels/gemm.py) with W and R
as packed B panels: packed at compile time when they are constants, else by
the kernel before its first step (runtime_weights). The gates are vector loops
along the hidden size with the cell's activations inlined; W's bias is the
projection's epilogue, R's is added in the gates (GRU's linear_before_reset
needs it inside the reset gate's product). Running the whole sequence
inside one function keeps the entry code independent of the sequence length
and lets the projections live in scratch memory private to the call.

With sequence_lens, row b is valid for steps s < len[b]; it reads time
t = s (forward) or len[b] - 1 - s (reverse). Invalid rows keep their state and
get Y[s, b] = 0, so Y is zero past each sequence's end and Y_h holds the last
valid state, as onnxruntime does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...kernel import get_or_build
from ..gemm.gemm import GemmSpec
from ..gemm.gemm_epilogue import Epilogue
from ..gemm.pack import get_pack_b_strided
from ..support.vloop import define_kernel, like, vector_loop, vload, vstore
from .activations import emit_activation

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ACTIVATION_COUNT = {"lstm": 3, "gru": 2, "rnn": 1}

Activation = tuple[str, tuple[float, ...]]  # kernel op (activations.py) and constant params

_KINDS = {PTR: U.PTR, I64: U.I64, F32: U.F32}


@dataclass(frozen=True)
class CellSpec:
    kind: str  # "lstm", "gru" or "rnn"
    activations: tuple[Activation, ...]  # LSTM (f, g, h), GRU (f, g), RNN (f,)
    lanes: int
    x_tile: tuple[int, int]  # GEMM (MR, NV) of the input projection (M = seq * batch)
    h_tile: tuple[int, int]  # ... of the recurrent product (M = batch)
    peephole: bool = False  # LSTM's P
    input_forget: bool = False  # LSTM: f = 1 - i
    linear_before_reset: bool = False  # GRU
    write_y: bool = True  # Y is an output
    runtime_weights: bool = False  # W and R arrive unpacked ([gates*hidden, in]) at run time

    def __post_init__(self) -> None:
        if len(self.activations) != ACTIVATION_COUNT[self.kind]:
            raise ValueError(f"{self.kind} takes {ACTIVATION_COUNT[self.kind]} activations")
        if self.x_tile[1] != self.h_tile[1]:
            raise ValueError("W and R are packed in panels of one width")

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    @property
    def split_reset(self) -> bool:
        """GRU without linear_before_reset: (r * H) @ Rh^T is a second product per step."""
        return self.kind == "gru" and not self.linear_before_reset

    @property
    def nr(self) -> int:
        return self.x_tile[1] * self.lanes  # panel width of packed W and R

    @property
    def x_gemm(self) -> GemmSpec:
        mr, nv = self.x_tile
        return GemmSpec(mr, nv, self.lanes, "strided", "packed", Epilogue("col"))

    @property
    def h_gemm(self) -> GemmSpec:
        mr, nv = self.h_tile
        return GemmSpec(mr, nv, self.lanes, "strided", "packed", Epilogue())

    @property
    def name(self) -> str:
        acts = "_".join(op + "".join(f"_{p:g}" for p in ps) for op, ps in self.activations)
        flags = [f for f, on in (("peep", self.peephole), ("cifg", self.input_forget),
                                 ("lbr", self.linear_before_reset), ("y", self.write_y),
                                 ("rtw", self.runtime_weights)) if on]
        tiles = f"x{self.x_tile[0]}h{self.h_tile[0]}v{self.x_tile[1]}x{self.lanes}"
        name = "_".join([self.kind, "f32", acts, *flags, tiles])
        return name.replace(".", "p").replace("-", "m").replace("+", "")

    def params(self) -> list[tuple[str, str]]:
        lstm = self.kind == "lstm"
        out = [("x", PTR), ("w", PTR), ("r", PTR)]
        out += [("r_h", PTR)] * (self.split_reset and not self.runtime_weights)
        out += [("bias", PTR), ("rbias", PTR)] + [("peep", PTR)] * self.peephole
        for state in ("h", "c") if lstm else ("h",):
            out += [(f"init_{state}", PTR), (f"init_{state}_stride", I64),
                    (state, PTR), (f"{state}_stride", I64)]
        if self.write_y:
            out += [("y", PTR), ("y_tstride", I64), ("y_bstride", I64)]
        out += [("lens", PTR), ("zeros", PTR), ("xg", PTR), ("rec", PTR), ("pack", PTR)]
        out += [("rh", PTR)] * self.split_reset
        if self.runtime_weights:  # where the kernel packs W and R
            out += [("w_packed", PTR), ("r_packed", PTR)]
        out += [(n, I64) for n in ("seq", "batch", "input", "hidden", "reverse",
                                   "xg_tstride", "xg_bstride")]
        out += [(n, I64) for n in ("x_kc", "x_mc", "x_nc", "h_kc", "h_mc", "h_nc")]
        return out + [("clip", F32)]

    def args(self, values: dict[str, object]) -> tuple[object, ...]:
        names = [n for n, _ in self.params()]
        missing, extra = set(names) - set(values), set(values) - set(names)
        if missing or extra:
            raise ValueError(f"{self.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
        return tuple(values[n] for n in names)

    def kernel(self) -> Kernel:
        return Kernel(self.name, tuple(k for _, k in self.params()),
                      lambda module, target: _build(module, target, self))


# ---------------------------------------------------------------------------
# The sequence loop


def _build(module: ir.Module, target: CpuTarget, spec: CellSpec) -> ir.Function:
    if target.f32_lanes != spec.lanes:
        raise ValueError(f"{spec.name} built for a target with {target.f32_lanes} lanes")
    names = [n for n, _ in spec.params()]
    fn, b = define_kernel(module, spec.name, [_KINDS[k] for _, k in spec.params()], names)
    v = dict(zip(names, fn.args, strict=True))
    gh = b.mul(v["hidden"], U.i64(spec.gates))
    if spec.runtime_weights:
        _pack_weights(b, spec, v, gh)
    cell = _Cell(spec, v, target)
    rows = b.mul(v["seq"], v["batch"])
    cell.gemm(b, spec.x_gemm, "x", dict(a=v["x"], b=v["w"], c=v["xg"], M=rows, N=gh,
                                        K=v["input"], ldc=gh, sam=v["input"], bias=v["bias"]))
    with U.for_range(b, U.i64(0), v["batch"], name="b0") as row:
        empty = b.icmp_signed("==", U.load(b, v["lens"], row, U.I32), ir.Constant(U.I32, 0))
        for state in ("h", "c") if spec.kind == "lstm" else ("h",):
            # an empty sequence's final state is 0, as in onnxruntime
            init = b.select(empty, v["zeros"], v[f"init_{state}"])
            init_at = b.select(empty, U.i64(0), b.mul(row, v[f"init_{state}_stride"]))
            cell.copy_row(b, init, init_at, v[state], b.mul(row, v[f"{state}_stride"]))
    with U.for_range(b, U.i64(0), v["seq"], name="s") as step:
        cell.step(b, step)
    b.ret_void()
    return fn


def _pack_weights(b: ir.IRBuilder, spec: CellSpec, v: dict[str, ir.Value], gh: ir.Value) -> None:
    """Pack W^T and R^T into B panels (R's candidate rows separately for a default
    GRU) and point v's w, r, r_h at them."""
    pack = get_pack_b_strided(b.module, spec.x_tile[1], spec.lanes)
    hidden = v["hidden"]
    b.call(pack, [v["w_packed"], v["w"], U.i64(1), v["input"], v["input"], gh])
    v["w"] = v["w_packed"]
    zr = b.mul(hidden, U.i64(2)) if spec.split_reset else gh
    b.call(pack, [v["r_packed"], v["r"], U.i64(1), hidden, hidden, zr])
    if spec.split_reset:
        # R's candidate rows start at row 2H of R, and after R_zr's panels
        r_h = U.gep(b, v["r_packed"], b.mul(_panels(b, zr, spec), b.mul(hidden, U.i64(spec.nr))))
        b.call(pack, [r_h, U.gep(b, v["r"], b.mul(zr, hidden)), U.i64(1), hidden, hidden, hidden])
        v["r_h"] = r_h
    v["r"] = v["r_packed"]


def _panels(b: ir.IRBuilder, n: ir.Value, spec: CellSpec) -> ir.Value:
    return b.sdiv(b.add(n, U.i64(spec.nr - 1)), U.i64(spec.nr))


class _Cell:
    """Code generation of one step, shared by the three cell kinds."""

    def __init__(self, spec: CellSpec, v: dict[str, ir.Value], target: CpuTarget):
        self.spec, self.v, self.target, self.lanes = spec, v, target, spec.lanes

    def gemm(self, b: ir.IRBuilder, gspec: GemmSpec, blocking: str,
             operands: dict[str, ir.Value]) -> None:
        """C = A @ B (+ bias) through the shared GEMM, operands by the GEMM's parameter
        names; A strided by rows, B packed; `blocking` names the kc/mc/nc arguments."""
        fn = get_or_build(b.module, gspec.kernel(), self.target)
        zero = U.i64(0)
        values = dict(batch=U.i64(1), a_bstride=zero, b_bstride=zero, c_bstride=zero, sak=U.i64(1),
                      scratch=self.v["pack"], **operands)
        for k in ("kc", "mc", "nc"):
            values[k] = self.v[f"{blocking}_{k}"]
        if "bias" in values:
            values.update(ldbias=zero, bias_bstride=zero)
        b.call(fn, [values[n] for n, _ in gspec.params()])

    def copy_row(self, b: ir.IRBuilder, src: ir.Value, src_at: ir.Value, dst: ir.Value,
                 dst_at: ir.Value) -> None:
        def body(b, j, count):
            vstore(b, vload(b, src, b.add(src_at, j), self.lanes, count), dst,
                   b.add(dst_at, j), count)

        vector_loop(b, self.v["hidden"], self.lanes, body)

    def step(self, b: ir.IRBuilder, s: ir.Value) -> None:
        v, spec = self.v, self.spec
        gh = b.mul(v["hidden"], U.i64(spec.gates))
        n = b.mul(v["hidden"], U.i64(2)) if spec.split_reset else gh
        self.gemm(b, spec.h_gemm, "h", dict(a=v["h"], b=v["r"], c=v["rec"], M=v["batch"], N=n,
                                            K=v["hidden"], ldc=gh, sam=v["h_stride"]))
        if spec.kind == "lstm":
            self.rows(b, s, self.lstm_gates)
        elif spec.kind == "rnn":
            self.rows(b, s, self.rnn_gates)
        elif not spec.split_reset:
            self.rows(b, s, self.gru_gates)
        else:
            self.rows(b, s, self.gru_reset, zero_y=False)
            rec_h = U.gep(b, v["rec"], b.mul(v["hidden"], U.i64(2)))
            self.gemm(b, spec.h_gemm, "h", dict(a=v["rh"], b=v["r_h"], c=rec_h, M=v["batch"],
                                                N=v["hidden"], K=v["hidden"], ldc=gh,
                                                sam=v["hidden"]))
            self.rows(b, s, self.gru_update)

    def rows(self, b: ir.IRBuilder, s: ir.Value, gates: Callable, zero_y: bool = True) -> None:
        """gates(b, row pointers, j, count) as a vector loop for every valid batch row;
        Y[s, b] = 0 for the others."""
        v = self.v
        with U.for_range(b, U.i64(0), v["batch"], name="row") as row:
            length = b.sext(U.load(b, v["lens"], row, U.I32), U.I64)
            valid = b.icmp_signed("<", s, length)
            backwards = b.sub(b.sub(length, U.i64(1)), s)
            t = b.select(b.icmp_signed("!=", v["reverse"], U.i64(0)), backwards, s)
            with b.if_else(valid) as (then, otherwise):
                with then:
                    ptrs = self.row_pointers(b, row, t)
                    vector_loop(b, v["hidden"], self.lanes,
                                lambda b, j, count: gates(b, ptrs, j, count))
                with otherwise:
                    if zero_y and self.spec.write_y:
                        self.zero_y(b, row, s)

    def row_pointers(self, b: ir.IRBuilder, row: ir.Value, t: ir.Value) -> dict[str, ir.Value]:
        v, spec = self.v, self.spec
        gh = b.mul(v["hidden"], U.i64(spec.gates))
        xg_row = b.add(b.mul(t, v["xg_tstride"]), b.mul(row, v["xg_bstride"]))
        ptrs = {"xg": U.gep(b, v["xg"], b.mul(xg_row, gh)),
                "rec": U.gep(b, v["rec"], b.mul(row, gh)),
                "h": U.gep(b, v["h"], b.mul(row, v["h_stride"]))}
        if spec.kind == "lstm":
            ptrs["c"] = U.gep(b, v["c"], b.mul(row, v["c_stride"]))
        if spec.split_reset:
            ptrs["rh"] = U.gep(b, v["rh"], b.mul(row, v["hidden"]))
        if spec.write_y:
            y_at = b.add(b.mul(t, v["y_tstride"]), b.mul(row, v["y_bstride"]))
            ptrs["y"] = U.gep(b, v["y"], y_at)
        return ptrs

    def zero_y(self, b: ir.IRBuilder, row: ir.Value, s: ir.Value) -> None:
        v = self.v
        at = b.add(b.mul(s, v["y_tstride"]), b.mul(row, v["y_bstride"]))
        zeros = ir.Constant(U.vec(U.F32, self.lanes), None)

        def body(b, j, count):
            # masked by the runtime remainder even for full vectors: a loop of plain zero
            # stores becomes a memset call, which bare-metal targets do not have
            rest = count if count is not None else b.sub(v["hidden"], j)
            vstore(b, zeros, v["y"], b.add(at, j), rest)

        vector_loop(b, v["hidden"], self.lanes, body)

    # ---- per-vector gate math ----

    def load(self, b, ptrs, key: str, j, count, gate: int = 0) -> ir.Value:
        at = j if gate == 0 else b.add(j, b.mul(self.v["hidden"], U.i64(gate)))
        return vload(b, ptrs[key], at, self.lanes, count)

    def recurrent(self, b, ptrs, j, count, gate: int) -> ir.Value:
        """H @ R^T + Rb of one gate."""
        rb = vload(b, self.v["rbias"], b.add(j, b.mul(self.v["hidden"], U.i64(gate))),
                   self.lanes, count)
        return U.fadd(b, self.load(b, ptrs, "rec", j, count, gate), rb)

    def pre(self, b, ptrs, j, count, gate: int) -> ir.Value:
        """The pre-activation of one gate: xg (with Wb) + H @ R^T + Rb."""
        return U.fadd(b, self.load(b, ptrs, "xg", j, count, gate),
                      self.recurrent(b, ptrs, j, count, gate))

    def act(self, b, which: int, x: ir.Value, clip: bool = True) -> ir.Value:
        """The cell's activation number `which` of clip(x). Like onnxruntime, LSTM's
        h(C) does not clip C."""
        if clip:
            bound = U.splat(b, self.v["clip"], self.lanes)
            x = U.fmin(b, U.fmax(b, x, b.fneg(bound)), bound)
        op, params = self.spec.activations[which]
        return emit_activation(b, op, x, [U.f32(p) for p in params])

    def store_h(self, b, ptrs, j, count, h: ir.Value) -> None:
        vstore(b, h, ptrs["h"], j, count)
        if self.spec.write_y:
            vstore(b, h, ptrs["y"], j, count)

    def lstm_gates(self, b, ptrs, j, count) -> None:
        """Gates in ONNX order i, o, f, c; peepholes P = (Pi, Po, Pf)."""
        c_prev = self.load(b, ptrs, "c", j, count)

        def peep(x, k, c):
            if not self.spec.peephole:
                return x
            p = vload(b, self.v["peep"], b.add(j, b.mul(self.v["hidden"], U.i64(k))),
                      self.lanes, count)
            return U.fadd(b, x, U.fmul(b, p, c))

        i = self.act(b, 0, peep(self.pre(b, ptrs, j, count, 0), 0, c_prev))
        if self.spec.input_forget:
            f = U.fsub(b, like(i.type, 1.0), i)
        else:
            f = self.act(b, 0, peep(self.pre(b, ptrs, j, count, 2), 2, c_prev))
        cand = self.act(b, 1, self.pre(b, ptrs, j, count, 3))
        c = U.fadd(b, U.fmul(b, f, c_prev), U.fmul(b, i, cand))
        o = self.act(b, 0, peep(self.pre(b, ptrs, j, count, 1), 1, c))
        vstore(b, c, ptrs["c"], j, count)
        self.store_h(b, ptrs, j, count, U.fmul(b, o, self.act(b, 2, c, clip=False)))

    def rnn_gates(self, b, ptrs, j, count) -> None:
        self.store_h(b, ptrs, j, count, self.act(b, 0, self.pre(b, ptrs, j, count, 0)))

    def _blend(self, b, ptrs, j, count, z: ir.Value, cand: ir.Value) -> None:
        """H = (1 - z) * cand + z * H_prev."""
        h_prev = self.load(b, ptrs, "h", j, count)
        self.store_h(b, ptrs, j, count, U.fadd(b, cand, U.fmul(b, z, U.fsub(b, h_prev, cand))))

    def gru_gates(self, b, ptrs, j, count) -> None:
        """linear_before_reset: cand = g(xh + r * (H @ Rh^T + Rbh))."""
        z = self.act(b, 0, self.pre(b, ptrs, j, count, 0))
        r = self.act(b, 0, self.pre(b, ptrs, j, count, 1))
        rec_h = self.recurrent(b, ptrs, j, count, 2)
        cand = self.act(b, 1, U.fadd(b, self.load(b, ptrs, "xg", j, count, 2),
                                     U.fmul(b, r, rec_h)))
        self._blend(b, ptrs, j, count, z, cand)

    def gru_reset(self, b, ptrs, j, count) -> None:
        """First half of a default GRU step: z (kept in rec's z slot) and r * H_prev."""
        z = self.act(b, 0, self.pre(b, ptrs, j, count, 0))
        r = self.act(b, 0, self.pre(b, ptrs, j, count, 1))
        vstore(b, z, ptrs["rec"], j, count)
        vstore(b, U.fmul(b, r, self.load(b, ptrs, "h", j, count)), ptrs["rh"], j, count)

    def gru_update(self, b, ptrs, j, count) -> None:
        """Second half: cand = g(xh + (r * H_prev) @ Rh^T), then the blend."""
        cand = self.act(b, 1, self.pre(b, ptrs, j, count, 2))
        self._blend(b, ptrs, j, count, self.load(b, ptrs, "rec", j, count), cand)
