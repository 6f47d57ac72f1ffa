"""Compiling and timing one candidate: runs in a worker process (pool.py).

The candidate's configuration is forced through a FixedSchedule on the
one-node model of its workload; the native run is timed after a warm-up, in
`repeats` rounds of enough runs to last `min_round_s`, and the round times
(seconds per run) are kept: their minimum is the candidate's time, their
coefficient of variation says how noisy the machine was. A noisy
measurement is taken once more with twice the rounds. Code run on several
threads is timed in more, shorter rounds (see `round_plan`).

A workload whose cost is "cycles" (a simulated accelerator's, schedule/space.py)
is run once instead: the simulator is deterministic, and the candidate's cost
is the cycles its device regions report.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..compiler import CompileOptions, compile_model
from ..errors import TinycError
from ..ir import Graph
from ..link.artifact import Artifact
from ..schedule import Config, FixedSchedule
from .pool import Stages, building, timing_alone

WARMUP_RUNS = 2


@dataclass(frozen=True)
class MeasureJob:
    model: Graph | bytes  # a one-node model (an IR graph), or a whole ONNX model's bytes
    target: str
    key: str  # the workload measured ("" for a whole model)
    config: Config
    threads: int | None = None
    repeats: int = 5
    min_round_s: float = 0.002
    max_cv: float = 0.1  # above it the rounds are taken again, twice as many
    # a test hook run in the worker first (a picklable function): makes a
    # candidate crash or hang on purpose
    probe: Callable[[MeasureJob], None] | None = None
    # other workloads' configurations (a whole model with its tuned layers)
    others: dict[str, Config] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] | None = None
    cost: str = "time"  # the workload's (Workload.cost): "time" or "cycles"
    pin: dict[str, str] = field(default_factory=dict)  # node -> device (CompileOptions.pin)


@dataclass(frozen=True)
class MeasureResult:
    times: tuple[float, ...] = ()
    cv: float = 0.0
    error: str = ""
    build_s: float = 0.0

    @property
    def best(self) -> float:
        return min(self.times) if self.times else math.inf


@dataclass(frozen=True)
class Built:
    """A candidate compiled, to be timed (on this machine or another of its kind)."""

    job: MeasureJob  # without its model, which is compiled in
    artifact: Artifact
    build_s: float


def build(job: MeasureJob) -> Built | MeasureResult:
    if job.probe is not None:
        job.probe(job)
    t0 = time.perf_counter()
    configs = dict(job.others) | ({job.key: job.config} if job.key else {})
    schedule = FixedSchedule(configs)
    opts = CompileOptions(threads=job.threads, schedule=schedule, default_tuning=False,
                          pin=dict(job.pin))
    with building():
        artifact = compile_model(job.model, job.target, opts, job.input_shapes)
    build_s = time.perf_counter() - t0
    if job.key and job.key not in schedule.asked:
        return MeasureResult(error="the one-node model did not ask for this workload",
                             build_s=build_s)
    # only what running it needs travels to the timing machine
    return Built(replace(job, model=b"", probe=None),
                 replace(artifact, partition=None, listings={}), build_s)


def run_built(built: Built | MeasureResult) -> MeasureResult:
    if isinstance(built, MeasureResult):
        return built
    job = built.job
    with tempfile.TemporaryDirectory(prefix="tinyc-tune-") as folder:
        model = built.artifact.load(folder)
        if job.threads and hasattr(model, "set_num_threads"):
            model.set_num_threads(job.threads)
        feeds = random_feeds(model.get_inputs())
        if job.cost == "cycles":  # deterministic: one run
            times, cv = simulated_cycles(model, feeds), 0.0
        else:
            threads = getattr(model, "num_threads", 1)
            with timing_alone():
                times, cv = time_runs(lambda: model.run(None, feeds), job, threads)
    return MeasureResult(times, cv, build_s=built.build_s)


# the local pool runs both in one worker; a distributed one builds anywhere and
# times on the target's machines
measure = Stages(build, run_built)


def simulated_cycles(model, feeds: dict[str, np.ndarray]) -> tuple[float]:
    """One run; the cycles of its device regions (their timeline events)."""
    model.run(None, feeds)
    timeline = getattr(model, "timeline", None)
    cycles = [e.args["cycles"] for e in timeline.events
              if e.kind == "region" and "cycles" in e.args] if timeline is not None else []
    if not cycles:  # the worker records it as the candidate's failure
        raise TinycError("no device region reported simulated cycles: the workload's "
                         "layer did not run on a simulated device")
    return (float(sum(cycles)),)


def random_feeds(inputs) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for info in inputs:
        dtype = np.dtype(info.dtype)
        shape = [int(d) for d in info.shape]
        data = rng.standard_normal(shape) if dtype.kind == "f" else rng.integers(0, 3, shape)
        out[info.name] = np.ascontiguousarray(data.astype(dtype))
    return out


def time_runs(run: Callable[[], object], job: MeasureJob,
              threads: int = 1) -> tuple[tuple[float, ...], float]:
    for _ in range(WARMUP_RUNS):  # caches, page faults, the thread pool's start
        run()
    t0 = time.perf_counter()
    run()
    once = max(time.perf_counter() - t0, 1e-7)
    round_s, repeats = round_plan(job, threads)
    number = max(1, math.ceil(round_s / once))
    times = _rounds(run, number, repeats)
    if coefficient_of_variation(times) > job.max_cv:  # noisy: once more, longer
        times = _rounds(run, number, 2 * repeats)
    return tuple(times), coefficient_of_variation(times)


def round_plan(job: MeasureJob, threads: int) -> tuple[float, int]:
    """(seconds a round lasts at least, rounds). On several threads a run
    stalls whenever another process takes one of its cores (the join waits
    for the slowest worker), for bursts longer than a round of 2 ms: the
    minimum of 5 such rounds, measured again and again for one candidate on 2
    threads, was up to 1.3-2x off its best; of 40 rounds of 0.5 ms, at most
    1.12x (and mostly under 1.01x). So twice the time is spread over eight
    times the rounds, of which some fall between bursts."""
    if threads <= 1:
        return job.min_round_s, job.repeats
    return job.min_round_s / 4, job.repeats * 8


def _rounds(run: Callable[[], object], number: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            run()
        out.append((time.perf_counter() - t0) / number)
    return out


def coefficient_of_variation(times: list[float] | tuple[float, ...]) -> float:
    if len(times) < 2:
        return 0.0
    mean = float(np.mean(times))
    return float(np.std(times) / mean) if mean > 0 else 0.0
