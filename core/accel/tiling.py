"""Tiling one GEMM job into commands that fit the engine's buffers.

Each buffer is split into slots (job.slots; by default two: double
buffering), and a tile may use one slot. The accumulator tile [mt, nt]
(int32) bounds mt * nt; the input tile [mt, kt] and the weight tile [kt, nt]
(+ 12 bytes of post-op parameters per channel) bound kt. Without a tuning
record (schedule.py), among tile shapes whose sides are multiples of the
array (rows for k, cols for n), the cheapest by a quick estimate of compute
and DMA cycles with two slots per buffer is chosen; a tile that stays in its
slot (all of K, or all of the weights) is not loaded again.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .commands import Alu, Emitter, Gemm, LoadInput, LoadWeights, Store
from .engine import EngineConfig
from .jobs import GemmJob

PARAM_BYTES = 12  # per output channel: bias (int32), scale (float32), weight zero point
DOUBLE = (2, 2, 2)  # slots of the input, weight and accumulator buffers: double buffering


@dataclass(frozen=True)
class Tiles:
    mt: int
    nt: int
    kt: int
    n_outer: bool  # loop over n outside m (weights stay, inputs stream) or the reverse

    def fits(self, e: EngineConfig, slots: tuple[int, int, int] = DOUBLE) -> bool:
        return (self.mt * self.nt * 4 <= e.acc_bytes // slots[2]
                and self.mt * self.kt <= e.input_bytes // slots[0]
                and self.kt * self.nt + PARAM_BYTES * self.nt <= e.weight_bytes // slots[1])


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil(a, b) * b


def tile_sides(job: GemmJob, e: EngineConfig) -> tuple[list[int], list[int], list[int]]:
    """The tile sides considered along m, n and k, ascending."""
    ms = sorted({min(job.m, 1 << s) for s in range(0, 13)} | {job.m})
    ns = sorted({min(_round_up(job.n, e.cols), e.cols * f) for f in (1, 2, 4, 8, 16, 32)})
    ks = sorted({min(_round_up(job.k, e.rows), e.rows * f) for f in (1, 2, 4, 8, 16, 32, 64, 128)})
    return ms, ns, ks


def choose_tiles(job: GemmJob, e: EngineConfig) -> Tiles:
    """The untuned choice (two slots per buffer): the cheapest by estimate_cycles."""
    ms, ns, ks = tile_sides(job, e)
    options = [Tiles(mt, nt, kt, outer) for mt, nt, kt, outer
               in itertools.product(ms, ns, ks, (False, True))]
    fitting = [t for t in options if t.fits(e)]
    if not fitting:
        raise ValueError(f"{job.name}: no tile fits the buffers of {e.name}")
    return min(fitting, key=lambda t: (estimate_cycles(job, e, t), -t.mt, -t.nt, -t.kt,
                                       t.n_outer))


def estimate_cycles(job: GemmJob, e: EngineConfig, t: Tiles) -> float:
    """Compute and DMA cycles, assuming they overlap (the larger one counts)."""
    mt, nt, kt = _ceil(job.m, t.mt), _ceil(job.n, t.nt), _ceil(job.k, t.kt)
    passes = _ceil(min(t.kt, job.k), e.rows) * _ceil(min(t.nt, job.n), e.cols)
    compute = nt * kt * (passes * max(job.m, mt * e.rows) + mt * (e.rows + e.cols))
    inp_loads, wgt_loads = _loads(mt, nt, kt, t.n_outer)
    dma = (inp_loads * e.dma_cycles(t.mt * t.kt) + wgt_loads * e.dma_cycles(t.kt * t.nt)
           + mt * nt * e.dma_cycles(t.mt * t.nt))
    return job.batch * (max(compute, dma) + min(compute, dma) / max(mt * nt, 1))


def _loads(mt: int, nt: int, kt: int, n_outer: bool) -> tuple[int, int]:
    """Input and weight tile loads with two slots each: a tile is kept while the
    inner loops need at most two different ones."""
    if n_outer:
        wgt = nt * kt if kt <= 2 else nt * mt * kt
        inp = mt * kt if mt * kt <= 2 else nt * mt * kt
        return inp, wgt
    inp = mt * kt if kt <= 2 else mt * nt * kt
    wgt = nt * kt if nt * kt <= 2 else mt * nt * kt
    return inp, wgt


def emit_job(index: int, job: GemmJob, e: EngineConfig, out: Emitter,
             tiles: Tiles | None = None) -> Tiles:
    """Append the commands computing job `index` in `tiles` (default: choose_tiles);
    buffer slots (job.slots of each buffer) take tiles in turn."""
    t = tiles or choose_tiles(job, e)
    if not t.fits(e, job.slots):
        raise ValueError(f"{job.name}: tile {t} does not fit the buffers of {e.name} split "
                         f"into {job.slots} slots")
    slots = _SlotState(job.slots)
    for b in range(job.batch):
        for m0, n0 in _output_tiles(job, t):
            acc = f"acc{slots.next_acc()}"
            m1, n1 = min(m0 + t.mt, job.m), min(n0 + t.nt, job.n)
            for k0 in range(0, job.k, t.kt):
                k1 = min(k0 + t.kt, job.k)
                inp = slots.take("inp", (b, m0, k0))
                if inp.load:
                    out.emit(LoadInput(index, b, m0, m1, k0, k1, inp.slot),
                             (f"t:{job.source}",), (inp.name,))
                wgt = slots.take("wgt", (k0, n0))
                if wgt.load:
                    out.emit(LoadWeights(index, k0, k1, n0, n1, wgt.slot), (), (wgt.name,))
                reads = (inp.name, wgt.name) + ((acc,) if k0 else ())
                out.emit(Gemm(index, inp.slot, wgt.slot, int(acc[-1]), k0 > 0), reads, (acc,))
            out.emit(Alu(index, int(acc[-1])), (acc,), (acc,))
            out.emit(Store(index, b, m0, m1, n0, n1, int(acc[-1])), (acc,), (f"t:{job.dest}",))
    return t


def _output_tiles(job: GemmJob, t: Tiles) -> list[tuple[int, int]]:
    ms, ns = range(0, job.m, t.mt), range(0, job.n, t.nt)
    if t.n_outer:
        return [(m0, n0) for n0 in ns for m0 in ms]
    return [(m0, n0) for m0 in ms for n0 in ns]


@dataclass(frozen=True)
class _Slot:
    name: str  # the resource name the emitter tracks, e.g. inp1
    slot: int
    load: bool  # False: the slot still holds this tile


class _SlotState:
    """Which tile each slot holds, so a tile still in a slot is not loaded again."""

    def __init__(self, counts: tuple[int, int, int] = DOUBLE) -> None:
        self.count = {"inp": counts[0], "wgt": counts[1], "acc": counts[2]}
        self.held: dict[str, list[object]] = {"inp": [None] * counts[0],
                                              "wgt": [None] * counts[1]}
        self.turn = {"inp": 0, "wgt": 0, "acc": 0}

    def _next(self, buf: str) -> int:
        self.turn[buf] = (self.turn[buf] + 1) % self.count[buf]
        return self.turn[buf]

    def next_acc(self) -> int:
        return self._next("acc")

    def take(self, buf: str, key: object) -> _Slot:
        if key in self.held[buf]:
            slot = self.held[buf].index(key)
            return _Slot(f"{buf}{slot}", slot, False)
        slot = self._next(buf)
        self.held[buf][slot] = key
        return _Slot(f"{buf}{slot}", slot, True)
