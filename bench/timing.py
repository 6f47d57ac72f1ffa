"""Timing several configurations against each other in one run (shared by the
bench/ scripts).

On a shared machine the load changes while a benchmark runs, so the
configurations to compare take turns: `interleave` times one sample of each
in rotating order, `runs` times over, and load from other processes hits them
alike. A sample is `reps` back-to-back runs lasting about `sample_s`,
recorded per run in wall time and in the calling thread's CPU time.

With several threads, what happens between two samples matters: a thread
pool whose workers went to sleep pays for waking them, and one whose workers
still spin takes cores from the next configuration (tinyc's spin 0.3 ms after
their last job; onnxruntime's, by default, far longer: build its session with
`quiet_ort_session`, whose workers stop spinning when a run returns).
`settle=True` runs each configuration once, untimed, before its sample: its
workers are awake and the previous configuration's have stopped spinning when
the timed runs start.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SAMPLE_SECONDS = 0.004  # a sample times enough runs of a small model to last this long


@dataclass
class Config:
    label: str
    run: Callable[[], object] | None
    reps: int = 1
    wall: list[float] = field(default_factory=list)  # seconds per run, one per sample
    cpu: list[float] = field(default_factory=list)  # the calling thread's CPU seconds per run


def interleave(configs: list[Config], runs: int, settle: bool = False,
               sample_s: float = SAMPLE_SECONDS) -> None:
    """`runs` samples of each configuration, in rotating order (see the module's doc)."""
    for c in configs:
        c.reps = reps_per_sample(c.run, sample_s)
    for r in range(runs):
        k = r % len(configs)
        for c in configs[k:] + configs[:k]:
            if settle:
                c.run()
            take_sample(c)


def reps_per_sample(run: Callable[[], object], sample_s: float = SAMPLE_SECONDS) -> int:
    for _ in range(3):  # warm-up: caches, the thread pool, onnxruntime's arena
        run()
    t0 = time.perf_counter()
    run()
    return max(1, int(sample_s / max(time.perf_counter() - t0, 1e-6)))


def take_sample(c: Config) -> None:
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(c.reps):
        c.run()
    c.cpu.append((time.thread_time() - c0) / c.reps)
    c.wall.append((time.perf_counter() - w0) / c.reps)


def quiet_ort_session(model, threads: int):
    """An onnxruntime session whose intra-op workers spin while a run lasts (as
    by default, its fastest) but stop when it returns ("session.force_spinning_stop"),
    so they take no core from what runs next; a run then starts by waking
    them, as tinyc's runs do after a sample of another configuration."""
    return ort_session(model, threads, {"session.force_spinning_stop": "1"})


def ort_session(model, threads: int, config: dict[str, str] | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def low(samples: list[float], q: float = 0.1) -> float:
    """The q-quantile (interpolated): a sample other processes disturbed least,
    steadier than the minimum of a few."""
    ordered = sorted(samples)
    pos = q * (len(ordered) - 1)
    i = int(pos)
    j = min(i + 1, len(ordered) - 1)
    return ordered[i] + (ordered[j] - ordered[i]) * (pos - i)


def median_spread(samples: list[float]) -> tuple[float, float]:
    """(median ms, half the interquartile range in % of the median)."""
    q = statistics.quantiles(samples, n=4)
    med = statistics.median(samples)
    return med * 1e3, 50 * (q[2] - q[0]) / med
