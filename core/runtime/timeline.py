"""A split run's timeline: host regions by wall time, device regions by the
device's own time (simulated cycles at its clock), transfers by the device's
DMA model; the events follow each other on one clock, as the regions run one
after another."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Event:
    name: str
    device: str
    kind: str  # "region" or "transfer"
    start_s: float
    seconds: float
    args: dict = field(default_factory=dict)


@dataclass
class Timeline:
    events: list[Event] = field(default_factory=list)
    now: float = 0.0

    def add(self, name: str, device: str, kind: str, seconds: float, **args) -> None:
        self.events.append(Event(name, device, kind, self.now, seconds, args))
        self.now += seconds

    def add_inside(self, name: str, device: str, start_s: float, seconds: float,
                   **args) -> None:
        """An event within the last one (a layer of a device region): the clock stays."""
        last = self.events[-1]
        self.events.append(Event(name, device, "layer", last.start_s + start_s, seconds, args))

    def bytes_moved(self) -> int:
        return sum(e.args.get("bytes", 0) for e in self.events if e.kind == "transfer")

    def chrome_trace(self, devices: list[str]) -> dict:
        """Chrome's trace format (chrome://tracing, Perfetto): one process per device,
        a thread for its regions and one for its transfers."""
        pid = {d: i for i, d in enumerate(devices)}
        meta = [{"ph": "M", "name": "process_name", "pid": pid[d], "tid": 0,
                 "args": {"name": d}} for d in devices]
        meta += [{"ph": "M", "name": "thread_name", "pid": pid[d], "tid": t,
                  "args": {"name": n}} for d in devices for t, n in ((0, "compute"),
                                                                     (1, "transfers"))]
        events = [{"name": e.name, "cat": e.kind, "ph": "X", "pid": pid[e.device],
                   "tid": 1 if e.kind == "transfer" else 0, "ts": e.start_s * 1e6,
                   "dur": e.seconds * 1e6, "args": e.args} for e in self.events]
        return {"traceEvents": meta + events, "displayTimeUnit": "ms"}
