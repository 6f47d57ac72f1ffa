"""SessionOptions.enable_profiling: a Chrome trace of a session, as onnxruntime
writes one (a JSON list of complete "X" events, one per line).

Each run is one "model_run" slice. Inside it, per node, a slice whose length
is the node's share of the cycles counted in that run (the artifact is
compiled with profile=True) times the run's wall time, laid end to end in
execution order: nodes run one after another, so the layout is the real
order and the lengths are measured shares, not separate clocks. A split
deployment adds its own timeline (regions, transfers, accelerator layers).
Times sit on the timeline's grid of 1/1024 us (runtime/timeline.py), the node
slices' edges computed in whole ticks, so they nest inside their model_run.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
import time

# runtime/timeline.py's grid, repeated because docs/architecture.md keeps this
# layer from importing runtime's modules: 1/1024 us is exact in binary and JSON,
# so a child ending where its parent ends compares equal in every trace reader
TICKS_PER_US = 1024


def to_ticks(us: float) -> int:
    return round(us * TICKS_PER_US)


def from_ticks(ticks: int) -> float:
    return ticks / TICKS_PER_US


class SessionProfiler:
    def __init__(self, prefix: str, provider: str):
        self.prefix = prefix or "tinyc_profile"
        self.provider = provider
        self.start_time_ns = time.time_ns()
        self._t0 = time.perf_counter_ns()
        self._events: list[dict] = []
        self._lock = threading.Lock()

    def now_us(self) -> float:
        return (time.perf_counter_ns() - self._t0) / 1e3

    def add(self, name: str, cat: str, ts_us: float, dur_us: float, tid: int = 0,
            **args) -> None:
        start, end = to_ticks(ts_us), to_ticks(ts_us + dur_us)
        event = {"cat": cat, "pid": os.getpid(), "tid": tid, "dur": from_ticks(end - start),
                 "ts": from_ticks(start), "ph": "X", "name": name, "args": args}
        with self._lock:
            self._events.append(event)

    def counters(self, model) -> list[int] | None:
        """The model's per-node cycle counters now, to diff across one run."""
        if getattr(model, "meta", {}).get("profile_nodes") and hasattr(model, "cycle_counts"):
            return model.cycle_counts()
        return None

    def record_run(self, model, ts_us: float, dur_us: float, before: list[int] | None) -> None:
        ts_us = from_ticks(to_ticks(ts_us))  # on the grid: children's sums stay exact
        dur_us = from_ticks(to_ticks(dur_us))
        self.add("model_run", "Session", ts_us, dur_us)
        if before is not None:
            self._node_slices(model, ts_us, dur_us, before)
        elif hasattr(model, "trace"):
            self._timeline(model.trace(), ts_us)

    def _node_slices(self, model, ts_us: float, dur_us: float, before: list[int]) -> None:
        deltas = [a - b for a, b in zip(model.cycle_counts(), before, strict=True)]
        total = sum(deltas)
        if total <= 0:
            return
        start, span = to_ticks(ts_us), to_ticks(dur_us)
        done = 0
        for (node, op), d in zip(model.meta["profile_nodes"], deltas, strict=True):
            # edges in whole ticks from the cycles counted so far: the last ends
            # exactly where model_run does
            a, b = start + span * done // total, start + span * (done + d) // total
            self.add(f"{node}_kernel_time", "Node", from_ticks(a), from_ticks(b - a),
                     op_name=op, provider=self.provider, cycles=d)
            done += d

    def _timeline(self, trace: dict, ts_us: float) -> None:
        threads: dict[tuple, int] = {}
        for e in trace.get("traceEvents", ()):
            if e.get("ph") != "X":
                continue  # process / thread names: Perfetto metadata, not slices
            tid = threads.setdefault((e["pid"], e["tid"]), len(threads) + 1)
            self.add(e["name"], e.get("cat", "Node"), ts_us + e["ts"], e["dur"], tid=tid,
                     **e.get("args", {}))

    def write(self) -> str:
        """Write the trace next to the working folder; returns its path."""
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
        path = f"{self.prefix}_{stamp}.json"
        with self._lock:
            events = sorted(self._events, key=lambda e: (e["ts"], -e["dur"]))
        lines = ",\n".join(json.dumps(e) for e in events)
        with open(path, "w", encoding="utf-8") as f:
            f.write("[\n" + lines + "\n]\n")
        return path
