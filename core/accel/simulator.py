"""Runs a command stream: bit-exact integer results and a cycle count.

Functionally, commands execute in program order on numpy tiles (the emitter's
dependencies guarantee program order is a legal order). Products and sums are
computed in float64, which is exact for int8 operands (|a * w| < 2^16, so sums
of fewer than 2^37 terms stay below 2^53); the int32 accumulator is recovered by
wrapping the exact sum, which is what int32 accumulation gives in any order.

For time, each command starts when its unit (load, compute, store) is free and its
dependencies are done, and takes:
  DMA      setup + ceil(bytes / bytes_per_cycle)
  Gemm     passes * max(mt, rows) + rows + cols, passes = ceil(kt/rows) * ceil(nt/cols)
           (a weight tile per pass is preloaded while the previous one streams
           mt rows; filling and draining the array costs rows + cols once)
  Alu      ceil(mt * nt / cols)  (cols lanes)
Utilization = useful MACs / (cycles * rows * cols).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from .commands import Alu, Command, Gemm, LoadInput, LoadWeights, Store, Sync
from .engine import EngineConfig
from .jobs import GemmJob, im2col, requantize
from .tiling import PARAM_BYTES

try:  # optional: only a speed matter (see Simulator.run)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl is in tinyc's compile extra
    def threadpool_limits(*args, **kwargs):
        return contextlib.nullcontext()


class SimulationError(RuntimeError):
    """A command stream the engine cannot run (a tile overflowing its slot, a wrong shape)."""


@dataclass
class JobStats:
    name: str
    macs: int
    start: int = 0
    end: int = 0

    @property
    def cycles(self) -> int:
        return self.end - self.start


@dataclass
class RunStats:
    cycles: int = 0
    compute_busy: int = 0
    dma_busy: int = 0
    overlap: int = 0  # cycles in which the DMA and the compute unit both worked
    useful_macs: int = 0
    dma_bytes: int = 0
    macs_per_cycle: int = 1
    jobs: list[JobStats] = field(default_factory=list)

    @property
    def utilization(self) -> float:
        return self.useful_macs / max(self.cycles * self.macs_per_cycle, 1)


class Simulator:
    def __init__(self, engine: EngineConfig, jobs: list[GemmJob], commands: list[Command]):
        self.e, self.jobs, self.commands = engine, jobs, commands
        # weights minus their zero points, as the array sees them
        self.wgt64 = [j.weights.astype(np.float64) - j.weight_zero.astype(np.float64)
                      for j in jobs]

    def run(self, memory: dict[str, np.ndarray]) -> RunStats:
        run = _Run(self, memory)
        # Tiles are small: BLAS threads only add synchronisation (10x slower on a
        # busy machine), so the products run on one thread.
        with threadpool_limits(1, user_api="blas"):
            for index, cmd in enumerate(self.commands):
                run.execute(index, cmd)
        return run.finish()


class _Run:
    def __init__(self, sim: Simulator, memory: dict[str, np.ndarray]):
        self.sim, self.e, self.memory = sim, sim.e, memory
        self.sources: dict[tuple[int, int], np.ndarray] = {}
        self.inp: list[tuple[np.ndarray, tuple] | None] = [None, None]
        self.wgt: list[tuple[np.ndarray, tuple] | None] = [None, None]
        self.acc: list[tuple[np.ndarray, tuple] | None] = [None, None]
        self.ends: list[int] = []
        self.free = {"load": 0, "compute": 0, "store": 0}
        self.busy: dict[str, list[tuple[int, int]]] = {"load": [], "compute": [], "store": []}
        self.stats = RunStats(macs_per_cycle=self.e.macs_per_cycle,
                              jobs=[JobStats(j.name, j.macs, -1, 0) for j in sim.jobs])

    def execute(self, index: int, cmd: Command) -> None:
        if isinstance(cmd, Sync):
            t = max(self.ends, default=0)
            self.free = dict.fromkeys(self.free, t)
            self.ends.append(t)
            return
        cycles = _HANDLERS[type(cmd)](self, cmd)
        start = max([self.free[cmd.unit]] + [self.ends[d] for d in cmd.deps])
        end = start + cycles
        self.free[cmd.unit] = end
        self.ends.append(end)
        self.busy[cmd.unit].append((start, end))
        job = self.stats.jobs[cmd.job]
        job.start = start if job.start < 0 else min(job.start, start)
        job.end = max(job.end, end)

    def finish(self) -> RunStats:
        s = self.stats
        s.cycles = max(self.ends, default=0)
        s.compute_busy = sum(b - a for a, b in self.busy["compute"])
        dma = _union(self.busy["load"] + self.busy["store"])
        s.dma_busy = sum(b - a for a, b in dma)
        s.overlap = _intersection(dma, self.busy["compute"])
        return s

    # ---- commands: each updates the buffers and returns its cycles

    def load_input(self, c: LoadInput) -> int:
        job = self.sim.jobs[c.job]
        tile = self._source(c.job, c.batch)[c.m0:c.m1, c.k0:c.k1]
        self._check_fits("input", tile.size, self._slot_bytes(0, c.slot, c), c)
        self.inp[c.slot] = (tile, (c.job, c.k0, c.k1))
        return self._dma(tile.size * np.dtype(job.input_dtype).itemsize)

    def load_weights(self, c: LoadWeights) -> int:
        tile = self.sim.wgt64[c.job][c.k0:c.k1, c.n0:c.n1]
        nbytes = tile.size + PARAM_BYTES * tile.shape[1]
        self._check_fits("weight", nbytes, self._slot_bytes(1, c.slot, c), c)
        self.wgt[c.slot] = (tile, (c.job, c.k0, c.k1, c.n0, c.n1))
        return self._dma(nbytes)

    def gemm(self, c: Gemm) -> int:
        a, (ja, ka0, ka1) = _held(self.inp, c.inp_slot, "input", c)
        w, (jw, kw0, kw1, n0, n1) = _held(self.wgt, c.wgt_slot, "weight", c)
        if (ja, ka0, ka1) != (jw, kw0, kw1) or ja != c.job:
            raise SimulationError(f"{c}: input tile k {ka0}:{ka1} of job {ja} does not meet "
                                  f"weight tile k {kw0}:{kw1} of job {jw}")
        self._check_fits("accumulator", a.shape[0] * w.shape[1] * 4,
                         self._slot_bytes(2, c.acc_slot, c), c)
        product = a @ w
        if c.accumulate:
            acc, meta = _held(self.acc, c.acc_slot, "accumulator", c)
            product = acc + product
        self.acc[c.acc_slot] = (product, (n0, n1))
        self.stats.useful_macs += a.shape[0] * a.shape[1] * w.shape[1]
        passes = -(-a.shape[1] // self.e.rows) * -(-w.shape[1] // self.e.cols)
        return passes * max(a.shape[0], self.e.rows) + self.e.rows + self.e.cols

    def alu(self, c: Alu) -> int:
        acc, (n0, n1) = _held(self.acc, c.acc_slot, "accumulator", c)
        exact = acc.astype(np.int64).astype(np.int32)  # int32 accumulation wraps
        self.acc[c.acc_slot] = (requantize(exact, self.sim.jobs[c.job], n0, n1), (n0, n1))
        return -(-acc.size // self.e.cols)

    def store(self, c: Store) -> int:
        job = self.sim.jobs[c.job]
        tile, _ = _held(self.acc, c.acc_slot, "accumulator", c)
        dest = self.memory[job.dest]
        if job.channels_first_out:
            dest.reshape(job.batch, job.n, job.m)[c.batch, c.n0:c.n1, c.m0:c.m1] = tile.T
        else:
            dest.reshape(-1, job.n)[c.m0:c.m1, c.n0:c.n1] = tile
        return self._dma(tile.size * dest.itemsize)

    # ---- helpers

    def _source(self, job_index: int, batch: int) -> np.ndarray:
        """The job's input matrix for one batch item, minus the input zero point."""
        key = (job_index, batch)
        if key not in self.sources:
            job = self.sim.jobs[job_index]
            src = self.memory[job.source]
            if job.geometry is not None:
                g = job.geometry
                mat = im2col(src.reshape(job.batch, g.c, g.h, g.w)[batch], g, job.input_zero)
            else:
                mat = src.reshape(-1, job.k)
            self.sources[key] = mat.astype(np.float64) - job.input_zero
        return self.sources[key]

    def _dma(self, nbytes: int) -> int:
        self.stats.dma_bytes += nbytes
        return self.e.dma_cycles(nbytes)

    def _slot_bytes(self, buffer: int, slot: int, c: Command) -> int:
        """A slot's capacity: its buffer split into the job's slots for it."""
        count = self.sim.jobs[c.job].slots[buffer]
        if not 0 <= slot < count:
            raise SimulationError(f"{c}: slot {slot} of a buffer split into {count}")
        size = (self.e.input_bytes, self.e.weight_bytes, self.e.acc_bytes)[buffer]
        return size // count

    def _check_fits(self, buffer: str, nbytes: int, capacity: int, c: Command) -> None:
        if nbytes > capacity:
            raise SimulationError(f"{c}: {nbytes} bytes overflow a {buffer} buffer slot of "
                                  f"{capacity} bytes on {self.e.name}")


def _held(slots: list, slot: int, buffer: str, c: Command):
    if slots[slot] is None:
        raise SimulationError(f"{c}: {buffer} slot {slot} holds nothing")
    return slots[slot]


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _intersection(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Total length of the overlap of two sorted lists of disjoint intervals."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


_HANDLERS = {LoadInput: _Run.load_input, LoadWeights: _Run.load_weights, Gemm: _Run.gemm,
             Alu: _Run.alu, Store: _Run.store}
