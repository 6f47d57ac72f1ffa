"""A GEMM job's tunable schedule on the array, stated as data for the tuner.

The knobs: the tile sides mt, nt, kt (tiling.tile_sides: powers of two along
m, multiples of the array along n and k; and m split into equal tiles), the
loop order over output tiles (weights stay while inputs stream, or the
reverse), and the slots each buffer (input, weight, accumulator) is split
into: 2 is double buffering (the DMA fills one slot while the array reads the
other), 1 gives one tile the whole buffer but loads and compute then take
turns. Limits (schedule/space.py) say that a tile fits its slot of each
buffer, exactly as the simulator checks.

Without a record the defaults are the untuned choice (tiling.choose_tiles,
double buffering everywhere). Candidates are measured in simulated cycles
(Workload.cost): the simulator is deterministic, so one run is the cost.
"""

from __future__ import annotations

import dataclasses
import json

from .. import __version__
from ..schedule import Decision, Knob, KnobSpace, Limit, ScheduleSource, Tunable, Workload
from ..schedule.space import target_hash
from .engine import EngineConfig
from .jobs import GemmJob
from .tiling import DOUBLE, PARAM_BYTES, Tiles, choose_tiles, tile_sides

KERNEL = "accel_gemm"
ORDERS = ("m_outer", "n_outer")  # n_outer: weights stay, inputs stream
# slots of (input, weight, accumulator): double buffering first (the default),
# then each buffer in turn given whole to one tile
BALANCED = 32  # m in up to this many equal tiles, beside the powers of two
SLOTS = ((2, 2, 2), (1, 2, 2), (2, 1, 2), (2, 2, 1), (1, 1, 2), (1, 2, 1), (2, 1, 1), (1, 1, 1))


def job_workload(job: GemmJob, op: str, e: EngineConfig) -> Workload:
    """What the job's commands and cycles depend on: the GEMM's sizes, the
    operands' element types and the engine (a hash of its spec's fields)."""
    wdtype = job.weights.dtype.name
    return Workload(op, KERNEL, ((job.batch, job.m, job.k), (job.k, job.n),
                                 (job.batch, job.m, job.n)),
                    (job.input_dtype, wdtype, job.out_dtype), (False, True), "",
                    target_hash(dataclasses.asdict(e)), __version__,
                    (("m", job.m), ("n", job.n), ("k", job.k), ("batch", job.batch)),
                    cost="cycles")


def job_space(job: GemmJob, e: EngineConfig) -> KnobSpace:
    ms, ns, ks = tile_sides(job, e)
    t = choose_tiles(job, e)
    # and m split evenly in j tiles: a last tile of a few rows pays for the array's
    # rows anyway (simulator.py). Tiles of fewer rows than the array's are never
    # faster, and their many small commands make a candidate slow to simulate.
    balanced = {-(-job.m // j) for j in range(1, BALANCED + 1)}
    ms = sorted({x for x in {*ms, *balanced} if x >= min(job.m, e.rows)} | {t.mt})
    knobs = (Knob("mt", tuple(ms), t.mt), Knob("nt", tuple(ns), t.nt), Knob("kt", tuple(ks), t.kt),
             Knob("order", ORDERS, ORDERS[t.n_outer]), Knob("slots", SLOTS, DOUBLE))
    limits = (Limit("input buffer", ((1, ("mt", "kt")),), e.input_bytes, "slots[0]"),
              Limit("weight buffer", ((1, ("kt", "nt")), (PARAM_BYTES, ("nt",))),
                    e.weight_bytes, "slots[1]"),
              Limit("accumulator buffer", ((4, ("mt", "nt")),), e.acc_bytes, "slots[2]"))
    return KnobSpace(knobs, limits)


def job_tunable(job: GemmJob, op: str, e: EngineConfig) -> Tunable:
    return Tunable(job_workload(job, op, e), job_space(job, e), job.name)


def scheduled_job(job: GemmJob, op: str, e: EngineConfig,
                  schedule: ScheduleSource) -> tuple[GemmJob, Tiles, Decision]:
    """The job with its buffer split, and its tiles, as `schedule` decides."""
    decision = schedule.decide(job_tunable(job, op, e))
    c = decision.config
    tiles = Tiles(int(c["mt"]), int(c["nt"]), int(c["kt"]), c["order"] == "n_outer")
    slots = tuple(int(x) for x in c["slots"])
    return dataclasses.replace(job, slots=slots), tiles, decision


def decision_json(job: GemmJob, decision: Decision) -> dict:
    """What a program records of a job's schedule (shown by the report)."""
    doc = {"job": job.name, "tuned": decision.tuned, "config": decision.config}
    return json.loads(json.dumps(doc))  # lists, as read back
