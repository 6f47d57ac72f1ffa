"""Planning an int8 GEMM (lower/igemm.py's IntGemm) into kernel calls.

The op is the GEMM core with int8 dtypes; the tensorizer picks the target's
intrinsic (VNNI: C[i] += A[k] * B[i, k], u8 x i8 -> i32). Whatever the op's
pair of dtypes, it is mapped onto the intrinsic's by flipping sign bits
(x ^ 0x80: an int8 x is the uint8 x + 128), which moves the zero point by 128:
with a' = flipped A, za' = its zero point (same for B),

    sum_k (a - za)(b - zb) = sum_k a'b' - zb'[n] ra[m] - za'[m] cb[n] + K za'[m] zb'[n]

ra / cb are row sums of A' / column sums of B'. Terms with constants only are
folded at compile time into per-row and per-column int32 vectors (with the
bias); a term with a runtime operand's sums is computed by the packers and
applied in the micro-kernel's epilogue. An intrinsic on wider integers (x86-avx2's
vpmaddwd, int16 x int16 -> int32) takes the bytes widened instead, unflipped:
weights at compile time, runtime operands by their packers; the algebra is the
same with a zero shift. With no matching intrinsic the plain, LLVM-vectorized
kernel computes the same integers.
"""

from __future__ import annotations

import numpy as np

from ..codegen.kernels.int8.igemm import IGemmSpec, choose_int_blocking, int_scratch_bytes
from ..codegen.kernels.int8.igemm_plain import PlainIGemmSpec, plain_block, plain_scratch_bytes
from ..codegen.kernels.int8.int_epilogue import IntEpilogue
from ..codegen.kernels.int8.pack_int8 import flip, pack_a_int8, pack_b_int8
from ..codegen.kernels.int8.pack_int8_tile import byte_masks_native
from ..errors import NotLowerable
from ..program import (
    Call,
    Const,
    Im2col,
    IntGemm,
    IntGemmLowering,
    IntMatrix,
    LowerContext,
    Scratch,
)
from ..target.machine import CpuTarget
from .gemm_form import gemm_form
from .match import Match
from .select import Choice, choose
from .steps import micro_step

GEMM = "C[m, n] += A[m, k] * B[k, n]"
SHIFT = {("int8", "uint8"): 128, ("uint8", "int8"): -128}  # zero point change of a flip


def plan_int_gemm(ctx: LowerContext, gemm: IntGemm, tag: str) -> IntGemmLowering:
    form = gemm_form(GEMM, {"A": gemm.a.dtype, "B": gemm.b.dtype, "C": "int32"}, "A")
    choice = choose(form, ctx.intrinsics, ctx.target, (gemm.m, gemm.n, gemm.k), _accepts)
    if choice.match is None or choice.tile is None:
        lowering = _plain(gemm, tag)
        return IntGemmLowering(lowering.calls, f"int8 GEMM {gemm.m}x{gemm.n}x{gemm.k}: "
                               f"{choice.summary} (LLVM-vectorized int32 loops)", choice)
    return _tensorized(gemm, choice, tag, ctx.target)


def _accepts(mt: Match) -> str | None:
    if mt.dtype("C") != "int32":
        return "dtype: the int8 kernel accumulates in int32"
    return None


# ---- tensorized ----


def _tensorized(gemm: IntGemm, choice: Choice, tag: str, target: CpuTarget) -> IntGemmLowering:
    """The kernel splits C across the target's threads (a scratch slice each)."""
    mt, tile = choice.match, choice.tile
    assert mt is not None and tile is not None
    step = micro_step(mt)
    m, n, k = gemm.m, gemm.n, gemm.k
    shared = _rows_shared(gemm)
    rows = tile.mr if shared else m  # entries of the per-row arrays
    mp, np_ = _round(rows, tile.mr), _round(n, tile.nv * step.n)
    za, zb = _adjusted(gemm.a, mt.dtype("A"), rows), _adjusted(gemm.b, mt.dtype("B"), n)
    terms = _Terms(rows, n, k, mp, np_)
    terms.fold(gemm, za, zb, _sums(gemm.a, mt.dtype("A"), 1), _sums(gemm.b, mt.dtype("B"), 0))
    spec = IGemmSpec(step, tile.mr, tile.nv,
                     a_src="packed" if gemm.a.const is not None else "strided",
                     b_src=_b_source(gemm.b), a_flip="A" in mt.flips,
                     b_flip="B" in mt.flips, row_outer=terms.row_outer,
                     col_outer=terms.col_outer, a_signed=_read_signed(gemm.a, mt, "A"),
                     epi=_epilogue(gemm, bias=False), threads=target.threads,
                     a_wide=_widening(gemm.a, mt, "A"), b_wide=_widening(gemm.b, mt, "B"),
                     split_masks=not byte_masks_native(target.features),
                     a_panels=_bare_metal(target), rows_shared=shared)
    blk = choose_int_blocking(spec, m, n, k, _b_block_bytes(target))
    values: dict[str, object] = dict(
        c=gemm.c, scratch=Scratch(f"{tag}.igemm", int_scratch_bytes(spec, blk, k)),
        M=m, N=n, K=k, ldc=gemm.ldc, nc=blk.nc, batch=gemm.batch,
        a_bstride=gemm.a_bstride, b_bstride=gemm.b_bstride, c_bstride=gemm.c_bstride)
    values.update(terms.values(tag))
    values.update(_packed_or_strided("a", gemm.a, mt, tag, spec))
    values.update(_packed_or_strided("b", gemm.b, mt, tag, spec))
    values.update(_requant_values(gemm, spec.epi, tag, mp, np_, rows))
    tile_layout = "x".join(str(step.n if d == "n" else step.k) for d in step.b_order)
    note = (f"int8 GEMM {m}x{n}x{k}: {choice.summary}; B packed as [n/{spec.nr}][k/{step.k}]"
            f"[{spec.nv}][{tile_layout}], epilogue {spec.epi.tag}")
    return IntGemmLowering([Call(spec.kernel(), spec.args(values))], note, choice)


def _rows_shared(gemm: IntGemm) -> bool:
    """A run-time M (a symbolic batch of a runtime A) cannot size a constant per
    row at compile time: every row then has the same terms (one zero point of A,
    no per-row bias or scale) and the kernel reads one tile's worth for all."""
    if isinstance(gemm.m, int) or gemm.a.const is not None:
        return False
    per_row = [gemm.a.zero_point]
    if gemm.bias is not None and gemm.bias_axis == "row":
        per_row.append(gemm.bias)
    if gemm.requant is not None and gemm.requant.axis == "row":
        per_row.append(gemm.requant.scale)
    return all(_uniform(np.asarray(x).reshape(-1)) for x in per_row)


def _b_block_bytes(target: CpuTarget) -> int:
    """The packed B block's budget: half an L2, or on bare metal (no OS, no
    cache: the scratch is RAM the arena must hold) 16 KiB. Measured under qemu:
    32 KiB grew ResNet-8's arena on cortex-m4 from 65 to 82 KiB for the same
    instruction count; it saved a cortex-m55 conv of 144 pixels, split in two
    blocks at 16 KiB, 20% of its instructions."""
    return 16 * 1024 if _bare_metal(target) else 512 * 1024


def _bare_metal(target: CpuTarget) -> bool:
    """No OS (thumbv7em-none-eabi): no caches to block for, RAM is the limit."""
    return "none" in target.triple.split("-")[1:]


def _round(x: int, step: int) -> int:
    return -(-x // step) * step


def _b_source(b: IntMatrix) -> str:
    if b.const is not None:
        return "packed"
    return "im2col" if b.im2col and not _pointwise(b.im2col) else "strided"


def _pointwise(g: Im2col) -> bool:
    """1x1, unit stride, no padding: the image's channel rows already are B."""
    return (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.ho, g.wo) == (1, 1, 1, 1, 0, 0, g.h, g.w)


def _widening(op: IntMatrix, mt: Match, role: str) -> str:
    """How a runtime operand's packer extends its bytes ("" when not widened or
    constant: widened at compile time)."""
    if role not in mt.widens or op.const is not None:
        return ""
    return "sext" if op.dtype == "int8" else "zext"


def _read_signed(op: IntMatrix, mt: Match, role: str) -> bool:
    """Is A's data, as the intrinsic reads it, signed (for its row sums)?"""
    return (op.dtype if role in mt.widens else mt.dtype(role)) == "int8"


def _adjusted(op: IntMatrix, want: str, size: int) -> np.ndarray:
    """The zero point per row/column after the flip the intrinsic asks for."""
    z = np.broadcast_to(np.asarray(op.zero_point, np.int64).reshape(-1), (size,))
    return z + SHIFT.get((op.dtype, want), 0)


def _flipped(op: IntMatrix, want: str) -> np.ndarray:
    """A constant operand as the intrinsic reads it: sign-flipped or widened."""
    assert op.const is not None
    x = op.const.astype(op.dtype)
    if op.dtype == want:
        return x
    return flip(x) if want in ("uint8", "int8") else x.astype(want)


def _sums(op: IntMatrix, want: str, axis: int) -> np.ndarray | None:
    """Row (axis 1) or column (axis 0) sums of a constant operand as the intrinsic
    reads it; None for a runtime operand (its packer sums it)."""
    if op.const is None:
        return None
    return _flipped(op, want).astype(np.int64).sum(axis=axis)


class _Terms:
    """The correction terms: constant ones folded into rowc/colc, the rest as outer
    products of a runtime operand's sums with the other's zero points."""

    def __init__(self, m: int, n: int, k: int, mp: int, np_: int):
        self.m, self.n, self.k, self.mp, self.np_ = m, n, k, mp, np_
        self.rowc, self.colc = np.zeros(m, np.int64), np.zeros(n, np.int64)
        self.row_outer = self.col_outer = False
        self.cw = self.rs = self.rw = self.cs = None

    def fold(self, gemm: IntGemm, za: np.ndarray, zb: np.ndarray, ra: np.ndarray | None,
             cb: np.ndarray | None) -> None:
        za_same, zb_same = _uniform(za), _uniform(zb)
        if zb.any():  # - zb'[n] ra[m]
            if ra is not None and zb_same:
                self.rowc -= zb[0] * ra
            else:
                self.row_outer, self.cw, self.rs = True, -zb, ra
        if za.any():  # - za'[m] cb[n]
            if cb is not None and za_same:
                self.colc -= za[0] * cb
            else:
                self.col_outer, self.rw, self.cs = True, -za, cb
        self._fold_kzz(za, zb, za_same, zb_same)
        if gemm.bias is not None:
            bias = np.asarray(gemm.bias, np.int64).reshape(-1)
            if gemm.bias_axis == "row":
                self.rowc += np.broadcast_to(bias, (self.m,))
            else:
                self.colc += np.broadcast_to(bias, (self.n,))

    def _fold_kzz(self, za: np.ndarray, zb: np.ndarray, za_same: bool, zb_same: bool) -> None:
        """+ K za'[m] zb'[n]."""
        if za_same:
            self.colc += self.k * za[0] * zb
        elif zb_same:
            self.rowc += self.k * za * zb[0]
        elif self.rs is not None:  # -zb'(ra - K za') covers it
            self.rs = self.rs - self.k * za
        elif self.cs is not None:
            self.cs = self.cs - self.k * zb
        else:
            raise NotLowerable("per-row zero points of A with per-column ones of B need a "
                               "constant A or B")

    def values(self, tag: str) -> dict[str, object]:
        out = {"rowc": _i32(f"{tag}.rowc", self.rowc, self.mp),
               "colc": _i32(f"{tag}.colc", self.colc, self.np_)}
        if self.row_outer:
            out["cw"] = _i32(f"{tag}.cw", self.cw, self.np_)
            if self.rs is not None:
                out["rs"] = _i32(f"{tag}.rs", self.rs, self.mp)
        if self.col_outer:
            out["rw"] = _i32(f"{tag}.rw", self.rw, self.mp)
            if self.cs is not None:
                out["cs"] = _i32(f"{tag}.cs", self.cs, self.np_)
        return out


def _uniform(z: np.ndarray) -> bool:
    return bool((z == z[0]).all())


def _i32(tag: str, values: np.ndarray, size: int) -> Const:
    """A padded int32 constant (the kernels read whole tiles of it)."""
    if values.size and (values.min() < -2**31 or values.max() >= 2**31):
        raise NotLowerable(f"{tag}: the zero-point correction overflows int32")
    out = np.zeros(size, np.int32)
    out[:values.size] = values
    return Const(tag, out)


def _packed_or_strided(role: str, op: IntMatrix, mt: Match, tag: str,
                       spec: IGemmSpec) -> dict[str, object]:
    want = mt.dtype(role.upper())
    if op.const is not None:
        x = _flipped(op, want)
        step = spec.step
        packed = pack_a_int8(x, spec.mr, step.k) if role == "a" else \
            pack_b_int8(x, spec.nr, step.n, step.k, step.b_order)
        return {role: Const(f"{tag}.{role}.packed", packed)}
    if op.im2col is not None and _pointwise(op.im2col):
        return {role: op.buf, "sbk": op.im2col.h * op.im2col.w, "sbn": 1}
    if op.im2col is not None:
        g = op.im2col
        zb = int(np.asarray(op.zero_point).reshape(-1)[0])
        return {role: op.buf, "H": g.h, "W": g.w, "kh": g.kh, "kw": g.kw, "sh": g.sh,
                "sw": g.sw, "dh": g.dh, "dw": g.dw, "ph": g.ph, "pw": g.pw, "Wo": g.wo,
                "pad": zb & 0xFF}
    names = ("sam", "sak") if role == "a" else ("sbk", "sbn")
    return {role: op.buf, names[0]: op.row_stride, names[1]: op.col_stride}


def _requant_values(gemm: IntGemm, epi: IntEpilogue, tag: str, mp: int,
                    np_: int, rows: int | None = None) -> dict[str, object]:
    """`rows`: the real entries of a per-row scale (default M)."""
    if gemm.requant is None:
        return {}
    size = mp if epi.scale == "row" else np_
    real = (gemm.m if rows is None else rows) if epi.scale == "row" else gemm.n
    scale = np.zeros(size, np.float32)
    scale[:real] = np.broadcast_to(np.asarray(gemm.requant.scale, np.float32).reshape(-1),
                                   (real,))
    return {"scale": Const(f"{tag}.scale", scale), "yzp": int(gemm.requant.zero_point)}


# ---- plain ----


def _plain(gemm: IntGemm, tag: str) -> IntGemmLowering:
    m, n, k = gemm.m, gemm.n, gemm.k
    epi = _epilogue(gemm, bias=True)
    const_b = gemm.b.const is not None
    src = "const" if const_b else "im2col" if gemm.b.im2col else "strided"
    # a run-time M (a symbolic batch of A) has one zero point for all its rows
    za_shared = not isinstance(m, int) and _uniform(np.asarray(gemm.a.zero_point).reshape(-1))
    spec = PlainIGemmSpec(gemm.a.dtype == "int8", gemm.b.dtype == "int8", src, epi, za_shared)
    nb = plain_block(n, k, const_b)
    values: dict[str, object] = dict(
        c=gemm.c, scratch=Scratch(f"{tag}.igemm", plain_scratch_bytes(nb, k, const_b)), nb=nb,
        za=Const(f"{tag}.za", _per(gemm.a.zero_point, 1 if za_shared else m)),
        zb=Const(f"{tag}.zb", _per(gemm.b.zero_point, n)),
        M=m, N=n, K=k, ldc=gemm.ldc, batch=gemm.batch, a_bstride=gemm.a_bstride,
        b_bstride=gemm.b_bstride, c_bstride=gemm.c_bstride)
    values.update(_plain_operand("a", gemm.a, tag, ("sam", "sak")))
    values.update(_plain_operand("b", gemm.b, tag, ("sbk", "sbn")))
    if gemm.bias is not None:
        size = m if epi.bias == "row" else n
        values["bias"] = Const(f"{tag}.bias", _per(gemm.bias, size))
    values.update(_requant_values(gemm, epi, tag, m, n))
    return IntGemmLowering([Call(spec.kernel(), spec.args(values))], "plain")


def _plain_operand(role: str, op: IntMatrix, tag: str,
                   strides: tuple[str, str]) -> dict[str, object]:
    if op.const is not None:
        data = np.ascontiguousarray(op.const.astype(np.dtype(op.dtype)))
        return {role: Const(f"{tag}.{role}", data), strides[0]: data.shape[1], strides[1]: 1}
    if op.im2col is not None:
        g = op.im2col
        return {role: op.buf, "H": g.h, "W": g.w, "kh": g.kh, "kw": g.kw, "sh": g.sh,
                "sw": g.sw, "dh": g.dh, "dw": g.dw, "ph": g.ph, "pw": g.pw, "Wo": g.wo}
    return {role: op.buf, strides[0]: op.row_stride, strides[1]: op.col_stride}


def _epilogue(gemm: IntGemm, bias: bool) -> IntEpilogue:
    """bias=False: the tensorized kernel has it folded into its constant terms."""
    kind = gemm.bias_axis if bias and gemm.bias is not None else "none"
    if gemm.requant is None:
        return IntEpilogue(kind)
    return IntEpilogue(kind, gemm.requant.dtype, gemm.requant.axis)


def _per(values: int | np.ndarray, size: int) -> np.ndarray:
    """A scalar or (size,) array as a contiguous int32 array of `size`."""
    arr = np.asarray(values, np.int64).reshape(-1)
    return np.ascontiguousarray(np.broadcast_to(arr, (size,)).astype(np.int32))
