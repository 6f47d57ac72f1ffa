"""A split run's timeline: host regions by wall time, device regions by the
device's own time (simulated cycles at its clock), transfers by the device's
DMA model; the events follow each other on one clock, as the regions run one
after another.

Chrome-trace viewers nest slices on one thread by their times, so a layer must
end within its region and after the layer before it starts. Times are written
on a grid of 1/1024 us: such numbers are exact in binary and in JSON, so a
child that ends where its parent ends compares equal in every reader, where
decimal microseconds summed from seconds overran by 1e-12 and were misnested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TICKS_PER_US = 1024


def to_ticks(us: float) -> int:
    return round(us * TICKS_PER_US)


def from_ticks(ticks: int) -> float:
    return ticks / TICKS_PER_US


@dataclass
class Event:
    name: str
    device: str
    kind: str  # "region", "transfer" or "layer" (inside the region before it)
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
                   "tid": 1 if e.kind == "transfer" else 0, "ts": from_ticks(start),
                   "dur": from_ticks(end - start), "args": args}
                  for e, start, end, args in _nested(self.events)]
        return {"traceEvents": meta + events, "displayTimeUnit": "ms"}


def _nested(events: list[Event]):
    """Each event with its start and end in ticks, layers clamped into their region
    and after their previous sibling: one layer's start and the last one's end,
    each computed from cycles in float, could cross by a rounding error. One
    thread of slices cannot show a real overlap, so one is kept in the args."""
    parent = (0, 0)
    sibling_end = 0
    for e in events:
        start, end = to_ticks(e.start_s * 1e6), to_ticks((e.start_s + e.seconds) * 1e6)
        args = e.args
        if e.kind != "layer":
            parent, sibling_end = (start, end), start
        else:
            clamped = min(max(start, sibling_end), parent[1])
            if clamped != start:
                args = {**args, "overlap_us": from_ticks(clamped - start)}
            start, end = clamped, max(clamped, min(end, parent[1]))
            sibling_end = end
        yield e, start, end, args
