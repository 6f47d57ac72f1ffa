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
their last job; onnxruntime's, at its defaults, keep a core busy for ~40 ms,
which made the next engine's runs twice as slow at 2 threads on 2 cores).
`settle=True` makes each sample start alike: first wait until no thread of
this process uses the CPU (the previous configuration's workers have stopped
spinning), then a sample's worth of untimed runs of this configuration (its
own are awake, and a core idle meanwhile is up to speed again: with one run,
a 0.5 ms model that followed onnxruntime's wait more often than its A/A twin
timed 2% slower); the timed runs follow back to back, as an application
calling in a loop would see them. So every engine runs at its own defaults and in its steady
state, and none pays for another's idle workers. (The alternatives, measured
on mobilenet_v2 at 2 threads against onnxruntime's own back-to-back runs:
"session.force_spinning_stop" costs it a wake-up per run, +4% at the 10th
percentile and +24% at the median; "session.intra_op.allow_spinning" = "0",
1.8x. Settled and interleaved, it times within 3% of its back-to-back runs,
and the tinyc run after it as fast as one after tinyc.)
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
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
                wait_idle()
                for _ in range(c.reps):  # untimed: a whole sample's worth
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


def wait_idle(max_s: float = 0.25, poll_s: float = 0.001) -> float:
    """Sleep until no other thread of this process is running (worker threads
    have stopped spinning), at most max_s; the wait. Linux: the threads'
    states in /proc; elsewhere a fixed pause."""
    t0 = time.perf_counter()
    if not os.path.isdir("/proc/self/task"):
        time.sleep(0.05)
        return time.perf_counter() - t0
    me = str(threading.get_native_id())
    while _running_threads(me) and time.perf_counter() - t0 < max_s:
        time.sleep(poll_s)
    return time.perf_counter() - t0


def _running_threads(me: str) -> int:
    running = 0
    for tid in os.listdir("/proc/self/task"):
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        running += state == "R"
    return running


def ort_session(model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
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


@dataclass
class OthersLoad:
    cores: float = 0.0  # CPU time other processes took, in cores (0 to os.cpu_count())


@contextlib.contextmanager
def others_load() -> Iterator[OthersLoad]:
    """How busy the rest of the machine was while the block ran: the CPU time
    every process took (/proc/stat) less this one's, over the wall time.
    Steadier than the load average, which lags by a minute; on Linux only
    (elsewhere it stays 0)."""
    out = OthersLoad()
    busy0, mine0, t0 = _busy_seconds(), _own_cpu_seconds(), time.perf_counter()
    yield out
    if busy0 is not None:
        busy = _busy_seconds() - busy0
        out.cores = max(0.0, busy - (_own_cpu_seconds() - mine0)) / (time.perf_counter() - t0)


def _busy_seconds() -> float | None:
    """Non-idle CPU seconds of the whole machine since boot (all cores)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle, iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
