"""A GEMM-array device at run time: its memory, the region programs loaded on
it, and the simulator that runs them.

Host code moves tensors explicitly: `write` copies a host array into device
memory, `read` copies one back; `run` executes a region's command stream on the
tensors in device memory and reports simulated cycles.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from .program import Program
from .simulator import RunStats, Simulator


class GemmArraySession:
    """Loaded from an artifact's folder for this device (region_*.json / .npz)."""

    def __init__(self, folder: str):
        self.programs: dict[str, Program] = {}
        self.simulators: dict[str, Simulator] = {}
        for path in sorted(glob.glob(os.path.join(folder, "region_*.json"))):
            stem = os.path.basename(path)[:-len(".json")]
            program = Program.load(folder, stem)
            self.programs[stem] = program
            self.simulators[stem] = Simulator(program.engine, program.jobs, program.commands)
        self.memory: dict[str, np.ndarray] = {}
        self.last: RunStats | None = None

    def write(self, name: str, array: np.ndarray) -> None:
        self.memory[name] = np.array(array, copy=True, order="C")

    def read(self, name: str) -> np.ndarray:
        return self.memory[name].copy()

    def run(self, region: str) -> dict:
        program = self.programs[region]
        missing = [v for v in program.inputs if v not in self.memory]
        if missing:
            raise RuntimeError(f"{region}: inputs {missing} are not in device memory")
        for name, (shape, dtype) in program.tensors.items():
            if name not in program.inputs:
                self.memory[name] = np.zeros(shape, dtype)
        self.last = stats = self.simulators[region].run(self.memory)
        e = program.engine
        return {"cycles": stats.cycles, "seconds": e.seconds(stats.cycles),
                "compute_cycles": stats.compute_busy, "dma_cycles": stats.dma_busy,
                "overlap_cycles": stats.overlap, "useful_macs": stats.useful_macs,
                "utilization": stats.utilization, "dma_bytes": stats.dma_bytes,
                "layers": [{"name": j.name, "macs": j.macs, "start": j.start, "end": j.end}
                           for j in stats.jobs]}

    def transfer_seconds(self, nbytes: int) -> float:
        """Host <-> device copies go through the same DMA engine."""
        e = next(iter(self.programs.values())).engine if self.programs else None
        return e.seconds(e.dma_cycles(nbytes)) if e else 0.0
