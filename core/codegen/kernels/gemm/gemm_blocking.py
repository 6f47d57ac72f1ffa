"""The fp32 GEMM driver's block sizes (gemm.py's loop nest): the defaults,
and the same choices as a knob space a tuner may search (schedule/space.py).
Any block sizes are correct: the kernel loops over M, N and K in blocks and
handles the tails; they only change speed."""

from __future__ import annotations

from dataclasses import dataclass

from ....ir.symbolic import hint_of
from ....schedule import Knob


@dataclass(frozen=True)
class Blocking:
    kc: int
    mc: int
    nc: int


# K blocks of up to KC_CAP: a B panel (KC x NR) stays in L2, and fewer blocks
# mean fewer passes over C (A/B, 1 / 2 threads, 256 -> 1024: resnet50 65.8 /
# 47.2 -> 65.5 / 46.4 ms, squeezenet 6.33 -> 6.07 (1T), mobilenet_v2 4.07 ->
# 3.99 (2T); 32 x 1024 x 2816 GEMMs 15.4 / 8.5-8.8 -> 14.5 / 7.9-8.3; the small-
# image conv, whose C tiles go out transposed, 2-30% faster).
KC_CAP = 1024
# A GEMM of one row panel (a decode step's GEMV) reuses no B panel from cache:
# one K block streams each thread's share of the weights as one run (2 threads,
# 16 chained 1x1024x2816: 6.28 -> 5.63-5.82 ms, 33 GB/s; onnxruntime 6.2-6.3).
KC_CAP_ONE_PANEL = 4096


def default_blocking(mr: int, nr: int, m: int, n: int, k: int,
                     kc: int | None = None, kc_cap: int = KC_CAP) -> Blocking:
    # symbolic sizes: blocked for their hints (any block sizes are correct:
    # the kernel loops over M, N and K in blocks and handles the tails)
    m, n, k = hint_of(m), hint_of(n), hint_of(k)
    if kc is None:
        kc = -(-k // max(1, -(-k // kc_cap)))
    kc = max(1, min(kc, k))
    nc_cap = max(nr, (512 * 1024 // (4 * kc)) // nr * nr)
    nc = min(nc_cap, -(-n // nr) * nr)
    mc = -(-min(m, 384) // mr) * mr
    return Blocking(kc, mc, nc)


# What a tuner may try for the blocks (schedule/space.py), besides the defaults:
# K in 1..16 balanced blocks; MC and NC in rows and columns (rounded up to the
# tile when used). Any values are correct: the kernel handles every tail.
K_SPLITS = (1, 2, 3, 4, 6, 8, 12, 16)
MC_ROWS = (32, 64, 96, 128, 192, 256, 384, 512, 768)
NC_COLS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


def blocking_knobs(mr: int, nr: int, m: int, n: int, k: int,
                   kc: int | None = None, kc_cap: int = KC_CAP) -> tuple[Knob, ...]:
    """The GEMM's tunable block sizes, the default blocking's as defaults; no KC
    knob when the caller fixes it (a summation order)."""
    d = default_blocking(mr, nr, m, n, k, kc, kc_cap)
    knobs = []
    if kc is None:
        kcs = {-(-k // s) for s in K_SPLITS if -(-k // s) >= 16} | {k, d.kc}
        knobs.append(Knob("kc", tuple(sorted(kcs)), d.kc))
    mcs = {_round_up(r, mr) for r in MC_ROWS if r < m} | {_round_up(m, mr), d.mc}
    ncs = {_round_up(c, nr) for c in NC_COLS if c < n} | {_round_up(n, nr), d.nc}
    knobs += [Knob("mc", tuple(sorted(mcs)), d.mc), Knob("nc", tuple(sorted(ncs)), d.nc)]
    return tuple(knobs)


def configured_blocking(config: dict, mr: int, nr: int, m: int, n: int, k: int,
                        kc: int | None = None, kc_cap: int = KC_CAP) -> Blocking:
    """A blocking_knobs configuration for a tile of MR rows and NR columns."""
    d = default_blocking(mr, nr, m, n, k, kc, kc_cap)
    kc = d.kc if kc is not None else max(1, min(int(config.get("kc", d.kc)), k))
    return Blocking(kc, _round_up(int(config["mc"]), mr), _round_up(int(config["nc"]), nr))


def _round_up(x: int, step: int) -> int:
    return max(step, -(-x // step) * step)
