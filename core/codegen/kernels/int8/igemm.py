"""The tensorized int8 GEMM driver: C = epilogue(A' B' + corrections), with A'
uint8/int8 and B' int8/uint8 as the target's intrinsic wants them (see
tensorize/int_gemm.py for the zero-point algebra), blocked like gemm.py but
without K blocks (the int32 accumulators stay in registers for all of K):

    per batch item and per worker's block of C (gemm_parallel.py decides which
    rows or columns of C each worker of the thread pool computes):
      pack the block's rows of A (a runtime operand) and their row sums, once
      jc  N in NC-column blocks   pack B (a runtime operand) and its column sums
        ir  MR-row panels, jr  NR-column panels: the micro-kernel

With `a_panels` (bare metal), B packed at compile time (weights) and A a
runtime operand, A is packed one MR-row panel at a time instead, just before its
micro-kernels, which then sweep all of B: the same work, and the scratch holds
MR rows rather than all of them (on a microcontroller, the difference between an
activation-sized buffer and none). With caches, the blocked order keeps a B
block in L2 across all rows instead.

Each worker packs into its own slice of the scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ...llvm_util import I8, I32, define, for_range, gep, i64, smin
from ...llvm_util import I64 as I64T
from ...llvm_util import PTR as PTRT
from ..gemm.gemm_parallel import Range, split_c_across_workers
from ..gemm.micro_step import MicroStep
from .igemm_ukernel import IntTile, get_int_ukernel
from .int_epilogue import IntEpilogue
from .pack_int8 import IM2COL_GEOMETRY
from .pack_int8_rt import get_pack_a_int8, get_pack_b_int8
from .pack_int8_tile import ByteFeed


@dataclass(frozen=True)
class IGemmSpec:
    step: MicroStep
    mr: int
    nv: int
    a_src: str = "strided"  # "packed" (compile time) or "strided"
    b_src: str = "packed"  # "packed", "strided" or "im2col"
    a_flip: bool = False  # runtime operands: flip sign bits while packing
    b_flip: bool = False
    row_outer: bool = False  # + rs[m] * cw[n] (rs: A's row sums)
    col_outer: bool = False  # + rw[m] * cs[n] (cs: B's column sums)
    a_signed: bool = False  # how the intrinsic reads A (for its row sums)
    a_wide: str = ""  # runtime operands: "sext"/"zext" to the step's wider elements
    b_wide: str = ""
    split_masks: bool = False  # no masked byte loads on the target (pack_int8_tile.py)
    a_panels: bool = False  # pack a runtime A panel by panel when B is constant (no caches)
    # the per-row arrays (rowc, rw, a row scale) hold one tile, the same for every
    # row panel: a run-time M (symbolic batch) has no compile-time row count
    rows_shared: bool = False
    epi: IntEpilogue = IntEpilogue()
    threads: int = 1  # worker threads (gemm_parallel.py); the scratch has a slice each

    def __post_init__(self) -> None:
        if self.a_src not in ("packed", "strided") or \
                self.b_src not in ("packed", "strided", "im2col"):
            raise ValueError(f"bad operand sources {self.a_src}/{self.b_src}")

    @property
    def nr(self) -> int:
        return self.nv * self.step.n

    @property
    def a_size(self) -> int:
        """Bytes per packed element of A (2 when widened to int16)."""
        return self.step.a_bits // 8

    @property
    def b_size(self) -> int:
        return self.step.b_bits // 8

    @property
    def name(self) -> str:
        flags = "".join(f"_{f}" for f, on in (("fa", self.a_flip), ("fb", self.b_flip),
                                               ("ro", self.row_outer), ("co", self.col_outer),
                                               (f"wa{self.a_wide}", self.a_wide),
                                               (f"wb{self.b_wide}", self.b_wide),
                                               ("sm", self.split_masks),
                                               ("ap", self.a_panels),
                                               ("rsh", self.rows_shared))
                        if on)
        threads = f"_t{self.threads}" if self.threads > 1 else ""
        return (f"igemm_{self.mr}x{self.nv}_{self.step.ident}_a{self.a_src}_b{self.b_src}"
                f"{flags}_{self.epi.tag}{threads}")

    def params(self) -> list[tuple[str, str]]:
        out = [("a", PTR), ("b", PTR), ("c", PTR), ("scratch", PTR), ("rowc", PTR),
               ("colc", PTR)]
        out += [(n, I64) for n in ("M", "N", "K", "ldc", "nc", "batch", "a_bstride",
                                   "b_bstride", "c_bstride")]
        if self.a_src == "strided":
            out += [("sam", I64), ("sak", I64)]
        if self.b_src == "strided":
            out += [("sbk", I64), ("sbn", I64)]
        if self.b_src == "im2col":
            out += [(n, I64) for n in IM2COL_GEOMETRY] + [("pad", I64)]
        if self.row_outer:
            out += [("cw", PTR)] + ([("rs", PTR)] if self.a_src == "packed" else [])
        if self.col_outer:
            out += [("rw", PTR)] + ([("cs", PTR)] if self.b_src == "packed" else [])
        return out + self.epi.params()

    def args(self, values: dict[str, object]) -> tuple[object, ...]:
        names = [n for n, _ in self.params()]
        missing, extra = set(names) - set(values), set(values) - set(names)
        if missing or extra:
            raise ValueError(f"{self.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
        return tuple(values[n] for n in names)

    def kernel(self) -> Kernel:
        return Kernel(self.name, tuple(k for _, k in self.params()),
                      lambda module, target: build_igemm(module, target, self))


@dataclass(frozen=True)
class IntBlocking:
    m: int  # rows of A packed at once (all of them)
    nc: int


def padded_k(spec: IGemmSpec, k: int) -> int:
    return -(-k // spec.step.k) * spec.step.k


def choose_int_blocking(spec: IGemmSpec, m: int, n: int, k: int,
                        block_bytes: int = 512 * 1024) -> IntBlocking:
    """NC so the packed B block (Kp x NC elements) stays within `block_bytes`
    (half of L2; far less on a microcontroller, where it is RAM)."""
    kp = padded_k(spec, k)
    nc = max(spec.nr, (block_bytes // (kp * spec.b_size)) // spec.nr * spec.nr)
    nc = min(nc, -(-n // spec.nr) * spec.nr)
    return IntBlocking(m, nc)


def int_scratch_bytes(spec: IGemmSpec, blk: IntBlocking, k: int) -> int:
    """Per thread, a slice: A block and its row sums, then B block and its column
    sums, 64-byte aligned (_scratch computes the same at run time)."""
    kp = padded_k(spec, k)
    if not isinstance(blk.m, int):  # a run-time M: a bound free of ceilings, see below
        return spec.threads * sum(x + 63 for x in _scratch_parts(spec, blk, kp))
    return spec.threads * sum(_round64(x) for x in _scratch_parts(spec, blk, kp))


def a_by_panel(spec: IGemmSpec) -> bool:
    """Is A (runtime) packed panel by panel (B constant: nothing to repack)?"""
    return spec.a_panels and spec.a_src != "packed" and spec.b_src == "packed"


def _scratch_parts(spec: IGemmSpec, blk: IntBlocking, kp: int) -> list[int]:
    a_rt, b_rt = spec.a_src != "packed", spec.b_src != "packed"
    mcp = spec.mr if a_by_panel(spec) else -(-blk.m // spec.mr) * spec.mr
    if not isinstance(blk.m, int) and not a_by_panel(spec):
        # M rounded up to whole panels is at most M + MR - 1; a polynomial the
        # memory planner compares with other sizes (e.g. the M < MR variant's)
        mcp = blk.m + spec.mr - 1
    a_rt, b_rt = int(a_rt), int(b_rt)  # a bool times a symbolic size would specialize it
    return [mcp * kp * spec.a_size * a_rt, 4 * mcp * a_rt, blk.nc * kp * spec.b_size * b_rt,
            4 * blk.nc * b_rt]


def _round64(x: int) -> int:
    return -(-x // 64) * 64


# ---- code generation ----


def build_igemm(module: ir.Module, target: CpuTarget, spec: IGemmSpec) -> ir.Function:
    names = [n for n, _ in spec.params()]
    types = [PTRT if k == PTR else I64T for _, k in spec.params()]
    fn, b = define(module, spec.name, types, names)
    split_c_across_workers(b, spec, dict(zip(names, fn.args, strict=True)), types,
                           _worker_block)
    b.ret_void()
    return fn


def _worker_block(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value], item: ir.Value,
                  rows: Range, cols: Range, worker: ir.Value) -> None:
    """C[rows, cols] of batch item `item`, packed in the worker's scratch slice."""
    v = dict(v)
    for ptr, stride in (("a", "a_bstride"), ("b", "b_bstride"), ("c", "c_bstride")):
        scale = 4 if ptr == "c" and not spec.epi.requant else 1
        v[ptr] = gep(b, v[ptr], b.mul(item, b.mul(v[stride], i64(scale))), I8)
    _column_blocks(b, spec, v, rows, cols, worker)


def _scratch(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value], kp: ir.Value,
             worker: ir.Value) -> list[ir.Value]:
    """Pointers to the four scratch parts (see _scratch_parts) of the worker's slice."""
    a_rt, b_rt = int(spec.a_src != "packed"), int(spec.b_src != "packed")
    mcp = i64(spec.mr) if a_by_panel(spec) else \
        b.mul(b.sdiv(b.add(v["M"], i64(spec.mr - 1)), i64(spec.mr)), i64(spec.mr))
    sizes = [b.mul(b.mul(mcp, kp), i64(a_rt * spec.a_size)), b.mul(mcp, i64(4 * a_rt)),
             b.mul(b.mul(v["nc"], kp), i64(b_rt * spec.b_size)), b.mul(v["nc"], i64(4 * b_rt))]
    rounded = [b.mul(b.sdiv(b.add(size, i64(63)), i64(64)), i64(64)) for size in sizes]
    offset = b.mul(worker, b.add(b.add(rounded[0], rounded[1]), b.add(rounded[2], rounded[3])))
    out = []
    for size in rounded:
        out.append(gep(b, v["scratch"], offset, I8))
        offset = b.add(offset, size)
    return out


def _column_blocks(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value], rows: Range,
                   cols: Range, worker: ir.Value) -> None:
    """C[rows, cols]: A's rows (packed once, or panel by panel), then NC-column
    blocks of C, independent of each other. rows and cols start on panel
    boundaries."""
    kstep = spec.step.k
    kp = b.mul(b.sdiv(b.add(v["K"], i64(kstep - 1)), i64(kstep)), i64(kstep))
    ksteps = b.sdiv(kp, i64(kstep))
    bufs = _scratch(b, spec, v, kp, worker)
    mcur = b.sub(rows[1], rows[0])
    if a_by_panel(spec):
        with for_range(b, 0, b.sdiv(b.add(mcur, i64(spec.mr - 1)), i64(spec.mr)),
                       name="ia") as ia:
            ic = b.add(rows[0], b.mul(ia, i64(spec.mr)))
            panel = (ic, smin(b, i64(spec.mr), b.sub(rows[1], ic)))
            _column_blocks_of(b, spec, v, panel, cols, kp, ksteps, bufs)
        return
    _column_blocks_of(b, spec, v, (rows[0], mcur), cols, kp, ksteps, bufs)


def _column_blocks_of(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value],
                      rows: tuple[ir.Value, ir.Value], cols: Range, kp: ir.Value,
                      ksteps: ir.Value, bufs: list[ir.Value]) -> None:
    """Rows [ic, ic + mcur) of C: their A packed, then every NC-column block."""
    a_buf, rs_buf, b_buf, cs_buf = bufs
    ic, mcur = rows
    a_panels, rs = _a_block(b, spec, v, kp, a_buf, rs_buf, ic, mcur)
    with for_range(b, 0, b.sdiv(b.add(b.sub(cols[1], cols[0]), b.sub(v["nc"], i64(1))),
                                v["nc"]), name="jc") as jb:
        jc = b.add(cols[0], b.mul(jb, v["nc"]))
        ncur = smin(b, v["nc"], b.sub(cols[1], jc))
        b_panels, cs = _b_block(b, spec, v, jc, ncur, kp, b_buf, cs_buf)
        block = _Block(ic, mcur, jc, ncur, a_panels, b_panels, rs, cs, ksteps,
                       b.mul(kp, i64(spec.a_size)), b.mul(kp, i64(spec.b_size)))
        _micro_tiles(b, spec, v, block)


@dataclass
class _Block:
    ic: ir.Value
    mcur: ir.Value
    jc: ir.Value
    ncur: ir.Value
    a: ir.Value  # first A panel of the block
    b: ir.Value
    rs: ir.Value | None  # row sums for row ic (runtime or constant)
    cs: ir.Value | None  # column sums for column jc
    ksteps: ir.Value
    a_row: ir.Value  # bytes of one packed row of A (Kp elements)
    b_col: ir.Value  # bytes of one packed column of B


def _b_block(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value], jc: ir.Value,
             ncur: ir.Value, kp: ir.Value, dst: ir.Value,
             sums: ir.Value) -> tuple[ir.Value, ir.Value | None]:
    if spec.b_src == "packed":  # [N/NR][Kp][NR]; jc is a multiple of NR
        cs = gep(b, v["cs"], jc, I32) if spec.col_outer else None
        return gep(b, v["b"], b.mul(jc, b.mul(kp, i64(spec.b_size))), I8), cs
    feed = ByteFeed(spec.b_flip, spec.b_wide, spec.split_masks)
    fn = get_pack_b_int8(b.module, spec.step, spec.nv, spec.b_src, feed, spec.col_outer)
    args = [dst, v["b"], sums, v["K"], ncur, jc]
    if spec.b_src == "strided":
        args += [i64(0), v["sbk"], v["sbn"]]
    else:
        args += [v["pad"]] + [v[n] for n in IM2COL_GEOMETRY]
    b.call(fn, args)
    return dst, sums if spec.col_outer else None


def _a_block(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value], kp: ir.Value,
             dst: ir.Value, sums: ir.Value, ic: ir.Value,
             mcur: ir.Value) -> tuple[ir.Value, ir.Value | None]:
    """A's rows [ic, ic + mcur) as panels, and their row sums (ic: a multiple of MR)."""
    if spec.a_src == "packed":  # [M/MR][Kp][MR]
        rs = gep(b, v["rs"], ic, I32) if spec.row_outer else None
        return gep(b, v["a"], b.mul(ic, b.mul(kp, i64(spec.a_size))), I8), rs
    fn = get_pack_a_int8(b.module, spec.mr, spec.step.k, spec.a_flip, spec.row_outer,
                         spec.a_signed, spec.a_wide)
    src = gep(b, v["a"], b.mul(ic, v["sam"]), I8)
    b.call(fn, [dst, src, sums, v["sam"], v["sak"], mcur, v["K"]])
    return dst, sums if spec.row_outer else None


def _micro_tiles(b: ir.IRBuilder, spec: IGemmSpec, v: dict[str, ir.Value], blk: _Block) -> None:
    mr, nr = spec.mr, spec.nr
    elem = I8 if spec.epi.requant else I32
    with for_range(b, 0, b.sdiv(b.add(blk.mcur, i64(mr - 1)), i64(mr)), name="ir") as ip:
        r0 = b.mul(ip, i64(mr))
        row = b.add(blk.ic, r0)
        mr_valid = smin(b, i64(mr), b.sub(blk.mcur, r0))
        a_panel = gep(b, blk.a, b.mul(r0, blk.a_row), I8)
        per_row = i64(0) if spec.rows_shared else row  # index of the row's terms
        with for_range(b, 0, b.sdiv(b.add(blk.ncur, i64(nr - 1)), i64(nr)), name="jr") as jp:
            c0 = b.mul(jp, i64(nr))
            col = b.add(blk.jc, c0)
            nr_valid = smin(b, i64(nr), b.sub(blk.ncur, c0))
            args = [a_panel, gep(b, blk.b, b.mul(c0, blk.b_col), I8), blk.ksteps,
                    gep(b, v["c"], b.add(b.mul(row, v["ldc"]), col), elem), v["ldc"],
                    mr_valid, nr_valid, gep(b, v["rowc"], per_row, I32),
                    gep(b, v["colc"], col, I32)]
            if spec.row_outer:
                args += [gep(b, blk.rs, r0, I32), gep(b, v["cw"], col, I32)]
            if spec.col_outer:
                args += [gep(b, v["rw"], per_row, I32), gep(b, blk.cs, c0, I32)]
            if spec.epi.requant:
                at = per_row if spec.epi.scale == "row" else col
                args += [gep(b, v["scale"], at, ir.FloatType()), v["yzp"]]
            _call_by_width(b, spec, nr_valid, args)


def _call_by_width(b: ir.IRBuilder, spec: IGemmSpec, nr_valid: ir.Value,
                   args: list[ir.Value]) -> None:
    """The full-width micro-kernel, or for a narrow last panel one that computes
    only the vectors holding valid columns."""
    def kernel(nv: int) -> ir.Function:
        tile = IntTile(spec.mr, nv, spec.nv, spec.step, spec.row_outer, spec.col_outer)
        return get_int_ukernel(b.module, tile, spec.epi)

    if spec.nv == 1:
        b.call(kernel(1), args)
        return
    vectors = b.sdiv(b.add(nr_valid, i64(spec.step.n - 1)), i64(spec.step.n))
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
