"""Packing operands into the micro-kernel's panel layouts.

- A panels: for each group of MR rows, for each k, the MR values A[m, k]
  (layout [m_panel][k][MR], rows past M are zero);
- B panels: for each group of NR columns, for each k, the NR values B[k, n]
  (layout [n_panel][k][NR], columns past N are zero).

Constant operands (weights) are packed here with numpy at compile time; runtime
operands are packed one (K block x M or N block) at a time by the generated
functions below, which the GEMM driver calls. The im2col packer builds conv B
panels straight from the NCHW input, so the im2col matrix never exists.
"""

from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from ...llvm_util import I64, PTR, define, f32, for_range, gep, i64, load, store_vec
from .gemm_simd import gather, lane_ids, masked_load, prefix_mask, raw_gep, splat_i32

# ---- compile time (numpy) ----


def pack_a_const(a: np.ndarray, mr: int, kc: int | None = None) -> np.ndarray:
    """A (M x K) -> [ceil(M/MR)][K][MR] float32, zero rows past M; with `kc`,
    K block by K block: [K/KC][ceil(M/MR)][KC][MR] (see GemmSpec.kblocked)."""
    m, k = a.shape
    if kc is not None and kc < k:
        return np.concatenate([pack_a_const(a[:, p:p + kc], mr).ravel()
                               for p in range(0, k, kc)])
    panels = -(-m // mr)
    padded = np.zeros((panels * mr, k), np.float32)
    padded[:m] = a
    return np.ascontiguousarray(padded.reshape(panels, mr, k).transpose(0, 2, 1))


def pack_b_const(b: np.ndarray, nr: int, kc: int | None = None) -> np.ndarray:
    """B (K x N) -> [ceil(N/NR)][K][NR] float32, zero columns past N; with `kc`,
    K block by K block: [K/KC][ceil(N/NR)][KC][NR] (see GemmSpec.kblocked)."""
    k, n = b.shape
    if kc is not None and kc < k:
        return np.concatenate([pack_b_const(b[p:p + kc], nr).ravel()
                               for p in range(0, k, kc)])
    panels = -(-n // nr)
    padded = np.zeros((k, panels * nr), np.float32)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, panels, nr).transpose(1, 0, 2))


# ---- runtime (generated) ----


def get_pack_a_strided(module: ir.Module, mr: int) -> ir.Function:
    """pack(dst, a, sm, sk, mcur, kcur): A[m, k] = a[m*sm + k*sk] into A panels.

    A is the small operand in our uses (it is reused across all of N), so a
    scalar copy is plenty fast."""
    name = f"pack_a_f32_mr{mr}"
    if name in module.globals:
        return module.globals[name]
    fn, b = define(module, name, [PTR, PTR, I64, I64, I64, I64],
                   ["dst", "a", "sm", "sk", "mcur", "kcur"], noalias=True)
    fn.linkage = "internal"
    dst, a, sm, sk, mcur, kcur = fn.args
    last_row = b.sub(mcur, i64(1))
    panels = b.sdiv(b.add(mcur, i64(mr - 1)), i64(mr))
    with for_range(b, 0, panels, name="p") as p:
        panel_dst = gep(b, dst, b.mul(p, b.mul(kcur, i64(mr))))
        with for_range(b, 0, kcur, name="k") as k:
            for r in range(mr):
                m = b.add(b.mul(p, i64(mr)), i64(r))
                valid = b.icmp_signed("<", m, mcur)
                # Padding rows read the last valid row and are zeroed: no branch.
                src = b.add(b.mul(b.select(valid, m, last_row), sm), b.mul(k, sk))
                val = b.select(valid, load(b, a, src), f32(0.0))
                b.store(val, gep(b, panel_dst, b.add(b.mul(k, i64(mr)), i64(r))))
    b.ret_void()
    return fn


def get_pack_b_strided(module: ir.Module, nv: int, lanes: int) -> ir.Function:
    """pack(dst, src, sk, sn, kcur, ncur): B[k, n] = src[k*sk + n*sn] into B panels
    of nv vectors. Rows (sn == 1) are copied with masked vector loads, anything
    else (a transposed B) is gathered."""
    name = f"pack_b_f32_{nv}v{lanes}"
    if name in module.globals:
        return module.globals[name]
    fn, b = define(module, name, [PTR, PTR, I64, I64, I64, I64],
                   ["dst", "src", "sk", "sn", "kcur", "ncur"], noalias=True)
    fn.linkage = "internal"
    args = dict(zip(["dst", "src", "sk", "sn", "kcur", "ncur"], fn.args, strict=True))
    with b.if_else(b.icmp_signed("==", args["sn"], i64(1))) as (rows, strided):
        with rows:
            _pack_b_panels(b, args, nv, lanes, contiguous=True)
        with strided:
            _pack_b_panels(b, args, nv, lanes, contiguous=False)
    b.ret_void()
    return fn


def _pack_b_panels(b: ir.IRBuilder, args: dict[str, ir.Value], nv: int, lanes: int,
                   contiguous: bool) -> None:
    nr = nv * lanes
    kcur, ncur = args["kcur"], args["ncur"]
    panels = b.sdiv(b.add(ncur, i64(nr - 1)), i64(nr))
    with for_range(b, 0, panels, name="p") as p:
        n0 = b.mul(p, i64(nr))
        panel_dst = gep(b, args["dst"], b.mul(n0, kcur))
        firsts = [b.add(n0, i64(v * lanes)) for v in range(nv)]
        masks = [prefix_mask(b, b.sub(ncur, f), lanes) for f in firsts]
        if not contiguous:
            stride = splat_i32(b, args["sn"], lanes)
            offsets = [b.mul(b.add(lane_ids(lanes), splat_i32(b, f, lanes)), stride)
                       for f in firsts]
        with for_range(b, 0, kcur, name="k") as k:
            row = gep(b, args["src"], b.mul(k, args["sk"]))
            for v in range(nv):
                if contiguous:
                    val = masked_load(b, raw_gep(b, row, firsts[v]), masks[v], lanes)
                else:
                    val = gather(b, row, offsets[v], masks[v])
                store_vec(b, val, panel_dst, b.add(b.mul(k, i64(nr)), i64(v * lanes)))
