"""Rotary position embedding (ONNX RotaryEmbedding, opset 23) in one kernel.

The input is viewed as rows of `head` contiguous elements, one per (b, s, h),
at x[b * stride_b + s * stride_s + h * stride_h]: a 3-D [B, S, H * D] input and
a 4-D [B, H, S, D] one differ only in their strides. Token (b, s) reads row
p of the caches, p = pos[b * S + s] (position_ids, checked in range by the
lowering before this runs) or, without positions, b * S + s (caches given as
[B, S, R / 2]). With R = 2 * half rotary dims:

    non-interleaved: x1 = x[i], x2 = x[half + i]        (i < half)
    interleaved:     x1 = x[2i], x2 = x[2i + 1]
    y1 = x1 cos[p, i] - x2 sin[p, i];  y2 = x1 sin[p, i] + x2 cos[p, i]

written back where x1 and x2 were; x[R:head] is copied. Narrow floats are
computed in float32 and rounded once. One token's heads share its cache row,
so tokens (b, s) are the parallel loop.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support.dtype_ir import storage_type, to_compute, to_storage
from ..support.vloop import define_kernel, vector_loop, vload, vstore

FLOATS = (DType.float32, DType.float16, DType.bfloat16)
ARGS = ("x", "y", "cos", "sin", "pos", "batch", "seq", "heads", "head", "half",
        "stride_b", "stride_s", "stride_h")


def rotary_kernel(dtype: DType, interleaved: bool, positions: bool) -> Kernel:
    """(x, y, cos, sin, pos, batch, seq, heads, head, half, stride_b, stride_s,
    stride_h); `pos` (int64 [B, S]) is unused without `positions`."""
    assert dtype in FLOATS
    name = (f"rotary_{dtype.short}{'_interleaved' if interleaved else ''}"
            f"{'_pos' if positions else ''}")
    params = (PTR,) * 5 + (I64,) * 8

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 5 + [U.I64] * 8, list(ARGS))
        v = dict(zip(ARGS, fn.args, strict=True))
        tokens = b.mul(v["batch"], v["seq"], name="tokens")
        work = b.mul(b.mul(tokens, v["heads"]), v["head"])
        rows = _Rows(dtype, interleaved, positions, target.f32_lanes)
        parallel_loop(b, target.threads, name, list(fn.args), tokens, work, rows.token)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


class _Rows:
    """The body of the loop over tokens: every head's row of token t."""

    def __init__(self, dtype: DType, interleaved: bool, positions: bool, lanes: int):
        self.dtype, self.interleaved, self.positions = dtype, interleaved, positions
        self.lanes, self.elem = lanes, storage_type(dtype)

    def token(self, b: ir.IRBuilder, args: list[ir.Value], t: ir.Value) -> None:
        v = dict(zip(ARGS, args, strict=True))
        bi, si = b.sdiv(t, v["seq"]), b.srem(t, v["seq"])
        p = U.load(b, v["pos"], t, U.I64) if self.positions else t
        cache = b.mul(p, v["half"], name="cache_row")
        first = b.add(b.mul(bi, v["stride_b"]), b.mul(si, v["stride_s"]))
        rotary = b.add(v["half"], v["half"])
        with U.for_range(b, U.i64(0), v["heads"], name="h") as h:
            row = b.add(first, b.mul(h, v["stride_h"]), name="row")
            if self.interleaved:
                self._pairs(b, v, row, cache)
            else:
                self._halves(b, v, row, cache)
            self._copy(b, v, b.add(row, rotary), b.sub(v["head"], rotary))

    def _load(self, b, base, at, lanes, count):
        return to_compute(b, vload(b, base, at, lanes, count, self.elem), self.dtype)

    def _store(self, b, value, base, at, count):
        vstore(b, to_storage(b, value, self.dtype), base, at, count)

    def _turn(self, b, v, cache, i, count, x1, x2):
        """(x1 cos - x2 sin, x1 sin + x2 cos) at cache columns i.."""
        c = self._load(b, v["cos"], b.add(cache, i), self.lanes, count)
        s = self._load(b, v["sin"], b.add(cache, i), self.lanes, count)
        return b.fsub(b.fmul(x1, c), b.fmul(x2, s)), b.fadd(b.fmul(x1, s), b.fmul(x2, c))

    def _halves(self, b, v, row, cache):
        lanes, second = self.lanes, b.add(row, v["half"])

        def body(b, i, count):
            x1 = self._load(b, v["x"], b.add(row, i), lanes, count)
            x2 = self._load(b, v["x"], b.add(second, i), lanes, count)
            y1, y2 = self._turn(b, v, cache, i, count, x1, x2)
            self._store(b, y1, v["y"], b.add(row, i), count)
            self._store(b, y2, v["y"], b.add(second, i), count)

        vector_loop(b, v["half"], lanes, body, name="r")

    def _pairs(self, b, v, row, cache):
        """Pairs (x[2i], x[2i+1]): one load of 2 * lanes elements, split into
        even and odd lanes by shuffles, merged back the same way."""
        lanes = self.lanes
        evens = ir.Constant(U.vec(U.I32, lanes), list(range(0, 2 * lanes, 2)))
        odds = ir.Constant(U.vec(U.I32, lanes), list(range(1, 2 * lanes, 2)))
        zipped = ir.Constant(U.vec(U.I32, 2 * lanes),
                             [k // 2 + (lanes if k % 2 else 0) for k in range(2 * lanes)])

        def body(b, i, count):
            at = b.add(row, b.add(i, i))
            both = None if count is None else b.add(count, count)
            x = self._load(b, v["x"], at, 2 * lanes, both)
            x1, x2 = (b.shuffle_vector(x, ir.Constant(x.type, None), m) for m in (evens, odds))
            y1, y2 = self._turn(b, v, cache, i, count, x1, x2)
            self._store(b, b.shuffle_vector(y1, y2, zipped), v["y"], at, both)

        vector_loop(b, v["half"], lanes, body, name="r")

    def _copy(self, b, v, start, count_all):
        """The dims past the rotary ones, unchanged (bits copied as they are)."""
        lanes = self.lanes

        def body(b, i, count):
            at = b.add(start, i)
            vstore(b, vload(b, v["x"], at, lanes, count, self.elem), v["y"], at, count)

        vector_loop(b, count_all, lanes, body, name="c")
