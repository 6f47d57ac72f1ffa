"""The fp32 GEMM driver: C = epilogue(A @ B), blocked BLIS-style around the
register-tiled micro-kernel of gemm_ukernel.py.

Loop nest, per batch item and per worker's block of C (outermost first; which
rows or columns of C each worker of the thread pool computes is decided by
gemm_parallel.py):

    jc  N in NC-column blocks
    pc  K in KC-row blocks         pack B[pc:pc+KC, jc:jc+NC] into panels (L2-sized)
    ic  M in MC-row blocks         pack A[ic:ic+MC, pc:pc+KC] into panels
    ir  MR-row panels of A         the A micro-panel (MR x KC) stays in L1 ...
    jr  NR-column panels of B      ... while B micro-panels stream from L2
        micro-kernel: C tile MR x NR (+= over K blocks, epilogue on the last)

Operands that are constants (conv weights, Gemm/MatMul weights) arrive already
packed (numpy, at compile time, see pack.py) and skip their packing step. A
conv's B is built by the im2col packer straight from the image. Shapes,
strides and block sizes are runtime arguments: one function per
(tile, operand sources, epilogue) serves every layer.

With a transposed epilogue C is column-major: convs on small images run as
Y^T = im2col^T @ W^T (pixels as rows, im2col packed into A panels, channels
along the vectors) so few vector lanes are wasted on a 7x7 image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import llvmlite.ir as ir

from ....ir.symbolic import hint_of
from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ...llvm_util import F32 as F32T
from ...llvm_util import I64 as I64T
from ...llvm_util import PTR as PTRT
from ...llvm_util import define, for_range, gep, i64, smin
from .gemm_blocking import Blocking, default_blocking
from .gemm_epilogue import Epilogue, EpilogueValues
from .gemm_parallel import Range as _Range
from .gemm_parallel import split_c_across_workers
from .gemm_ukernel import PREFETCH_BYTES, MicroTile, get_ukernel
from .micro_step import MicroStep
from .nbits_panels import PanelSpec, get_dequantize_panels
from .pack import get_pack_a_strided, get_pack_b_strided
from .pack_im2col import IM2COL_GEOMETRY, get_pack_im2col

# packed: [M/MR][K][MR] constant; strided: a[m*sam + k*sak], packed by a scalar loop;
# vstrided / im2col: packed by the B packers with MR-lane vectors (MR a vector width):
# they serve small-N convs computed transposed (pixels as rows, see lower/conv.py).
A_SOURCES = ("packed", "strided", "vstrided", "im2col")
# nbits: 4/8-bit weight panels (nbits_panels.py) dequantized into the B panels
B_SOURCES = ("packed", "strided", "im2col", "nbits")
SPLITS = ("auto", "m", "n")  # packed: [N/NR][K][NR]; strided: b[k*sbk + n*sbn]


def default_tile(lanes: int, m: int) -> tuple[int, int]:
    """(MR, NV) for f32 vectors of `lanes`: MR x NV accumulators plus NV B vectors
    and a broadcast must fit the register file (32 zmm with AVX-512, 16 ymm with
    AVX2). Few rows (a GEMV-like M) get a thinner tile instead of wasted rows."""
    mr, nv = (8, 3) if lanes >= 16 else (6, 2)
    if m >= mr:  # a guard where m is symbolic: the node then has a variant per side
        return mr, nv
    rows = hint_of(m) if hint_of(m) < mr else 1  # the other side of that decision
    return max(1, rows), nv


@dataclass(frozen=True)
class GemmSpec:
    mr: int
    nv: int
    lanes: int
    a_src: str = "packed"
    b_src: str = "strided"
    epi: Epilogue = field(default_factory=Epilogue)
    step: MicroStep | None = None  # the tensorized multiply-accumulate; None: plain
    # Worker threads C may be split across (gemm_parallel.py); the scratch holds
    # one packing slice per thread. 1: serial code.
    threads: int = 1
    # Constant operands packed K block by K block (pack_*_const with the
    # blocking's kc): the panels of one K block follow each other, so a block
    # streams from memory as one run the prefetchers can follow.
    kblocked: bool = False
    # which axis of C the threads split (gemm_parallel.py): "auto" decides at
    # run time by its cost model; "m" or "n" is a tuned choice
    split: str = "auto"
    nbits: PanelSpec | None = None  # the weight layout of b_src "nbits"
    prefetch: int = PREFETCH_BYTES  # bytes the micro-kernel prefetches ahead (tunable)

    def __post_init__(self) -> None:
        if self.a_src not in A_SOURCES or self.b_src not in B_SOURCES:
            raise ValueError(f"bad operand sources {self.a_src}/{self.b_src}")
        if self.split not in SPLITS:
            raise ValueError(f"bad thread split {self.split!r}: one of {SPLITS}")
        if self.step is not None and (self.step.n, self.step.k) != (self.lanes, 1):
            raise ValueError(f"step {self.step.tag} is {self.step.n} lanes x {self.step.k} "
                             f"k, the fp32 panels {self.lanes} x 1")
        if (self.b_src == "nbits") != (self.nbits is not None) or \
                (self.nbits is not None and self.nbits.width != self.nr):
            raise ValueError("b_src 'nbits' needs weight panels NR columns wide")
        if self.a_src == "im2col" and self.b_src == "im2col":
            raise ValueError("only one operand can be an im2col view")

    @property
    def nr(self) -> int:
        return self.nv * self.lanes

    @property
    def name(self) -> str:
        step = f"_{self.step.ident}" if self.step else ""
        step += f"_{self.nbits.tag}" if self.nbits else ""
        threads = f"_t{self.threads}" if self.threads > 1 else ""
        kb = "_kb" if self.kblocked else ""
        split = f"_s{self.split}" if self.split != "auto" and self.threads > 1 else ""
        split += f"_pf{self.prefetch}" if self.prefetch != PREFETCH_BYTES else ""
        return (f"gemm_f32_{self.mr}x{self.nv}v{self.lanes}_a{self.a_src}_b{self.b_src}{kb}"
                f"_{self.epi.tag}{step}{threads}{split}")

    def params(self) -> list[tuple[str, str]]:
        out = [("a", PTR), ("b", PTR), ("c", PTR), ("scratch", PTR)]
        out += [(n, I64) for n in ("M", "N", "K", "ldc", "kc", "mc", "nc")]
        out += [(n, I64) for n in ("batch", "a_bstride", "b_bstride", "c_bstride")]
        if self.a_src in ("strided", "vstrided"):
            out += [("sam", I64), ("sak", I64)]
        if self.b_src == "strided":
            out += [("sbk", I64), ("sbn", I64)]
        if self.b_src == "nbits":
            out += [("bscales", PTR), ("bzeros", PTR)]
        if "im2col" in (self.a_src, self.b_src):
            out += [(n, I64) for n in IM2COL_GEOMETRY]
        out += self.epi.params()
        if self.epi.bias != "none":
            out.append(("bias_bstride", I64))
        if self.epi.residual:
            out.append(("res_bstride", I64))
        return out

    def args(self, values: dict[str, object]) -> tuple[object, ...]:
        """Arguments in signature order from a dict by parameter name."""
        names = [n for n, _ in self.params()]
        missing = set(names) - set(values)
        extra = set(values) - set(names)
        if missing or extra:
            raise ValueError(f"{self.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
        return tuple(values[n] for n in names)

    def kernel(self) -> Kernel:
        return Kernel(self.name, tuple(k for _, k in self.params()),
                      lambda module, target: build_gemm(module, target, self))


def choose_blocking(spec: GemmSpec, m: int, n: int, k: int,
                    kc: int | None = None) -> Blocking:
    """KC balanced to <= KC_CAP rows unless the caller fixes it (a summation order
    to reproduce, see ir/sum_order.py); NC so the packed B block (KC x NC)
    stays well inside L2; MC bounds the packed A block (A panels are reused
    from L1)."""
    return default_blocking(spec.mr, spec.nr, m, n, k, kc)


def scratch_bytes(spec: GemmSpec, blk: Blocking) -> int:
    """Per thread, a slice: packed A block, then packed B block, each 64-byte
    aligned (_slice_floats computes the same at run time)."""
    return 4 * spec.threads * (_a_block_floats(spec, blk) + _b_block_floats(spec, blk))


def _a_block_floats(spec: GemmSpec, blk: Blocking) -> int:
    if spec.a_src == "packed":
        return 0
    return _round16(-(-blk.mc // spec.mr) * spec.mr * blk.kc)


def _b_block_floats(spec: GemmSpec, blk: Blocking) -> int:
    if spec.b_src == "packed":
        return 0
    return _round16(-(-blk.nc // spec.nr) * spec.nr * blk.kc)


def _round16(x: int) -> int:
    return -(-x // 16) * 16


# ---- code generation ----

_LLVM = {PTR: PTRT, I64: I64T, F32: F32T}


def build_gemm(module: ir.Module, target: CpuTarget, spec: GemmSpec) -> ir.Function:
    if spec.step is None and target.f32_lanes != spec.lanes:
        raise ValueError(f"{spec.name} built for a target with {target.f32_lanes} lanes")
    names = [n for n, _ in spec.params()]
    types = [_LLVM[k] for _, k in spec.params()]
    fn, b = define(module, spec.name, types, names)
    v = dict(zip(names, fn.args, strict=True))
    split_c_across_workers(b, spec, v, types, _worker_block)
    b.ret_void()
    return fn


_BATCHED = (("a", "a_bstride"), ("b", "b_bstride"), ("c", "c_bstride"),
            ("bias", "bias_bstride"), ("res", "res_bstride"))


def _worker_block(b: ir.IRBuilder, spec: GemmSpec, v: dict[str, ir.Value], item: ir.Value,
                  rows: _Range, cols: _Range, worker: ir.Value) -> None:
    """C[rows, cols] of batch item `item`, packed in the worker's own scratch slice."""
    v = dict(v)
    for ptr, stride in _BATCHED:
        if ptr in v:
            v[ptr] = gep(b, v[ptr], b.mul(item, v[stride]))
    v["scratch"] = gep(b, v["scratch"], b.mul(worker, _slice_floats(b, spec, v)))
    _blocked(b, spec, v, rows, cols)


def _slice_floats(b: ir.IRBuilder, spec: GemmSpec, v: dict[str, ir.Value]) -> ir.Value:
    """Floats of one worker's scratch slice: scratch_bytes / 4 / threads."""
    floats = i64(0)
    if spec.a_src != "packed":
        a_floats = b.mul(_ceil_div(b, v["mc"], spec.mr), b.mul(v["kc"], i64(spec.mr)))
        floats = _round16_ir(b, a_floats)
    if spec.b_src != "packed":
        b_floats = b.mul(_ceil_div(b, v["nc"], spec.nr), b.mul(v["kc"], i64(spec.nr)))
        floats = b.add(floats, _round16_ir(b, b_floats))
    return floats


def _blocked(b: ir.IRBuilder, spec: GemmSpec, v: dict[str, ir.Value], rows: _Range,
             cols: _Range) -> None:
    """C[rows, cols] of one batch item (v's pointers) with scratch v["scratch"];
    the ranges start on panel boundaries (MR rows, NR columns)."""
    v = dict(v)
    # Blocks of a pre-packed operand must start on a panel boundary.
    if spec.a_src == "packed":
        v["mc"] = b.mul(_ceil_div(b, v["mc"], spec.mr), i64(spec.mr))
    if spec.b_src in ("packed", "nbits"):
        v["nc"] = b.mul(_ceil_div(b, v["nc"], spec.nr), i64(spec.nr))
    a_floats = i64(0)
    if spec.a_src != "packed":
        panels = _ceil_div(b, v["mc"], spec.mr)
        a_floats = _round16_ir(b, b.mul(panels, b.mul(v["kc"], i64(spec.mr))))
    b_scratch = gep(b, v["scratch"], a_floats)
    with for_range(b, 0, _ceil_div(b, b.sub(cols[1], cols[0]), v["nc"]), name="jc") as jb:
        jc = b.add(cols[0], b.mul(jb, v["nc"]))
        ncur = smin(b, v["nc"], b.sub(cols[1], jc))
        with for_range(b, 0, _ceil_div(b, v["K"], v["kc"]), name="pc") as pb:
            pc = b.mul(pb, v["kc"])
            kcur = smin(b, v["kc"], b.sub(v["K"], pc))
            blk = _Block(jc=jc, ncur=ncur, pc=pc, kcur=kcur,
                         first=b.zext(b.icmp_signed("==", pc, i64(0)), I64T),
                         last=b.zext(b.icmp_signed("==", b.add(pc, kcur), v["K"]), I64T))
            blk.b_ptr, blk.b_pstride = _b_block(b, spec, v, blk, b_scratch)
            with for_range(b, 0, _ceil_div(b, b.sub(rows[1], rows[0]), v["mc"]),
                           name="ic") as ib:
                blk.ic = b.add(rows[0], b.mul(ib, v["mc"]))
                blk.mcur = smin(b, v["mc"], b.sub(rows[1], blk.ic))
                blk.a_ptr, blk.a_pstride = _a_block(b, spec, v, blk)
                _micro_tiles(b, spec, v, blk)


@dataclass
class _Block:
    """Loop values of the current (jc, pc, ic) block."""

    jc: ir.Value
    ncur: ir.Value
    pc: ir.Value
    kcur: ir.Value
    first: ir.Value  # i64 0/1: first K block (C is overwritten)
    last: ir.Value  # i64 0/1: last K block (epilogue)
    ic: ir.Value | None = None
    mcur: ir.Value | None = None
    a_ptr: ir.Value | None = None  # first A micro-panel of the block
    a_pstride: ir.Value | None = None  # floats between A micro-panels
    b_ptr: ir.Value | None = None
    b_pstride: ir.Value | None = None


def _b_block(b: ir.IRBuilder, spec: GemmSpec, v: dict[str, ir.Value], blk: _Block,
             scratch: ir.Value) -> tuple[ir.Value, ir.Value]:
    nr = i64(spec.nr)
    if spec.b_src == "packed":  # jc is a multiple of NR
        return _packed_block(b, spec, v["b"], blk.jc, v["N"], v["K"], nr, blk)
    module = b.module
    if spec.b_src == "nbits":  # jc is a multiple of NR; pc and kc of the block
        b.call(get_dequantize_panels(module, spec.nbits),
               [scratch, v["b"], v["bscales"], v["bzeros"], v["K"], blk.pc, blk.kcur,
                blk.jc, blk.ncur])
    elif spec.b_src == "strided":
        src = gep(b, v["b"], b.add(b.mul(blk.pc, v["sbk"]), b.mul(blk.jc, v["sbn"])))
        b.call(get_pack_b_strided(module, spec.nv, spec.lanes),
               [scratch, src, v["sbk"], v["sbn"], blk.kcur, blk.ncur])
    else:
        b.call(get_pack_im2col(module, spec.nv, spec.lanes),
               [scratch, v["b"], blk.kcur, blk.ncur, blk.pc, blk.jc]
               + [v[n] for n in IM2COL_GEOMETRY])
    return scratch, b.mul(blk.kcur, nr)


def _a_block(b: ir.IRBuilder, spec: GemmSpec, v: dict[str, ir.Value],
             blk: _Block) -> tuple[ir.Value, ir.Value]:
    mr = i64(spec.mr)
    if spec.a_src == "packed":  # ic is a multiple of MR
        return _packed_block(b, spec, v["a"], blk.ic, v["M"], v["K"], mr, blk)
    dst, module = v["scratch"], b.module
    if spec.a_src == "im2col":
        b.call(get_pack_im2col(module, 1, spec.mr),
               [dst, v["a"], blk.kcur, blk.mcur, blk.pc, blk.ic]
               + [v[n] for n in IM2COL_GEOMETRY])
        return dst, b.mul(blk.kcur, mr)
    src = gep(b, v["a"], b.add(b.mul(blk.ic, v["sam"]), b.mul(blk.pc, v["sak"])))
    if spec.a_src == "vstrided":  # A^T's rows are B-like rows: the B packer, MR lanes wide
        b.call(get_pack_b_strided(module, 1, spec.mr),
               [dst, src, v["sak"], v["sam"], blk.kcur, blk.mcur])
    else:
        b.call(get_pack_a_strided(module, spec.mr),
               [dst, src, v["sam"], v["sak"], blk.mcur, blk.kcur])
    return dst, b.mul(blk.kcur, mr)


def _packed_block(b: ir.IRBuilder, spec: GemmSpec, base: ir.Value, first: ir.Value,
                  extent: ir.Value, k: ir.Value, width: ir.Constant,
                  blk: _Block) -> tuple[ir.Value, ir.Value]:
    """(first panel, floats between panels) of a constant operand's block: row
    or column `first` (a panel boundary) of K block blk.pc, in panels `width` wide.
    [panels][K][width], or with spec.kblocked [K/KC][panels][KC][width]: the
    K blocks before pc are full, pc * padded extent floats."""
    panel = b.sdiv(first, width)
    if not spec.kblocked:
        start = b.add(b.mul(panel, b.mul(k, width)), b.mul(blk.pc, width))
        return gep(b, base, start), b.mul(k, width)
    padded = b.mul(_ceil_div(b, extent, width), width)
    start = b.add(b.mul(blk.pc, padded), b.mul(panel, b.mul(blk.kcur, width)))
    return gep(b, base, start), b.mul(blk.kcur, width)


def _micro_tiles(b: ir.IRBuilder, spec: GemmSpec, v: dict[str, ir.Value], blk: _Block) -> None:
    epi = EpilogueValues(spec.epi, {n: v[n] for n, _ in spec.epi.params()})
    with for_range(b, 0, _ceil_div(b, blk.mcur, spec.mr), name="ir") as ip:
        row = b.add(blk.ic, b.mul(ip, i64(spec.mr)))
        mr_valid = smin(b, i64(spec.mr), b.sub(blk.mcur, b.mul(ip, i64(spec.mr))))
        a_ptr = gep(b, blk.a_ptr, b.mul(ip, blk.a_pstride))
        with for_range(b, 0, _ceil_div(b, blk.ncur, spec.nr), name="jr") as jp:
            col = b.add(blk.jc, b.mul(jp, i64(spec.nr)))
            nr_valid = smin(b, i64(spec.nr), b.sub(blk.ncur, b.mul(jp, i64(spec.nr))))
            major, minor = (col, row) if spec.epi.transposed else (row, col)
            c_ptr = gep(b, v["c"], b.add(b.mul(major, v["ldc"]), minor))
            args = [a_ptr, gep(b, blk.b_ptr, b.mul(jp, blk.b_pstride)), blk.kcur, c_ptr,
                    v["ldc"], mr_valid, nr_valid, blk.first, blk.last]
            args += epi.at(b, row, col).args()
            _call_by_width(b, spec, nr_valid, args)


def _call_by_width(b: ir.IRBuilder, spec: GemmSpec, nr_valid: ir.Value,
                   args: list[ir.Value]) -> None:
    """The full-width micro-kernel, or for a narrow last panel one that computes
    only the vectors holding valid columns."""
    def kernel(nv: int) -> ir.Function:
        tile = MicroTile(spec.mr, nv, spec.nv, spec.lanes, spec.step,
                         b_prefetch=spec.b_src == "packed", prefetch=spec.prefetch)
        return get_ukernel(b.module, tile, spec.epi)

    if spec.nv == 1:
        b.call(kernel(1), args)
        return
    vectors = _ceil_div(b, nr_valid, spec.lanes)
    merge = b.append_basic_block("width.done")
    default = b.append_basic_block("width.full")
    switch = b.switch(vectors, default)
    for nv in range(1, spec.nv):
        case = b.append_basic_block(f"width.{nv}")
        switch.add_case(i64(nv), case)
        b.position_at_end(case)
        b.call(kernel(nv), args)
        b.branch(merge)
    b.position_at_end(default)
    b.call(kernel(spec.nv), args)
    b.branch(merge)
    b.position_at_end(merge)


def _ceil_div(b: ir.IRBuilder, x: ir.Value, d: ir.Value | int) -> ir.Value:
    d = i64(d) if isinstance(d, int) else d
    return b.sdiv(b.add(x, b.sub(d, i64(1))), d)


def _round16_ir(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.mul(_ceil_div(b, x, 16), i64(16))
