"""Running a split artifact: host regions in compiled code, accelerator regions
on their device, tensors moved explicitly between host and device memory.

Regions run in the order of the plan (model.json). Before an accelerator region
its `copy_in` tensors are written to the device, after it its `copy_out`
tensors are read back; everything else stays where it is. Each run records a
timeline: host regions by wall time, device regions by the device's own time
(simulated cycles at its clock), transfers by the device's DMA model; the
events follow each other on one clock, as the regions run one after another.
"""

from __future__ import annotations

import ctypes
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ArtifactError, TargetError
from .cpu_check import check_can_run
from .native import TensorInfo, _load_private_copy, aligned_empty, check_feed_names
from .status import status_error

SPLIT_FORMAT = 1


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


class HeteroModel:
    """A loaded split artifact: run(output_names, feeds) like NativeModel."""

    def __init__(self, directory: str):
        with open(os.path.join(directory, "model.json"), encoding="utf-8") as f:
            self.meta = json.load(f)
        if self.meta.get("kind") != "split" or self.meta.get("format") != SPLIT_FORMAT:
            raise ArtifactError(f"{directory} is not a split artifact of format {SPLIT_FORMAT}")
        check_can_run(self.meta, directory)  # the host regions' code, before it is loaded
        self.inputs = [TensorInfo(t["name"], t["shape"], t["dtype"]) for t in self.meta["inputs"]]
        self.outputs = [TensorInfo(t["name"], t["shape"], t["dtype"])
                        for t in self.meta["outputs"]]
        self.regions: list[dict] = self.meta["regions"]
        self._lib = _load_private_copy(os.path.join(directory, "model.so"))
        blob = np.fromfile(os.path.join(directory, "weights.bin"), np.uint8)
        self._weights = aligned_empty(max(blob.size, 1))
        self._weights[:blob.size] = blob
        self._arena = aligned_empty(max(int(self.meta["arena_bytes"]), 1))
        self._entries = {r["index"]: self._entry(r["entry"]) for r in self.regions
                         if r["kind"] == "cpu"}
        self.sessions = {d: _open_device(directory, d, b) for d, b in _accelerators(self.regions)}
        self.timeline = Timeline()

    def get_inputs(self) -> list[TensorInfo]:
        return list(self.inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self.outputs)

    @property
    def devices(self) -> list[str]:
        return [self.meta["host"], *self.sessions]

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        host = self._check_feeds(feeds)
        self.timeline = Timeline()
        for region in self.regions:
            if region["kind"] == "cpu":
                self._run_host(region, host)
            else:
                self._run_device(region, host)
        names = output_names or [o.name for o in self.outputs]
        unknown = [n for n in names if n not in {o.name for o in self.outputs}]
        if unknown:
            from ..errors import InputError

            raise InputError(f"unknown output names {unknown}; the model's outputs are "
                             f"{[o.name for o in self.outputs]}")
        return [host[n] for n in names]

    def trace(self) -> dict:
        """The last run's timeline in Chrome's trace format."""
        return self.timeline.chrome_trace(self.devices)

    # ---- regions

    def _run_host(self, region: dict, host: dict[str, np.ndarray]) -> None:
        ins = [host[v] for v in region["inputs"]]
        outs = [np.empty(self._shape(v), self._dtype(v)) for v in region["outputs"]]
        in_ptrs = (ctypes.c_void_p * max(len(ins), 1))(*[a.ctypes.data for a in ins])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[a.ctypes.data for a in outs])
        weights = self._weights.ctypes.data + int(region["weights_offset"])
        t0 = time.perf_counter()
        status = self._entries[region["index"]](in_ptrs, out_ptrs, weights,
                                                self._arena.ctypes.data)
        seconds = time.perf_counter() - t0
        if status != 0:
            raise status_error(self._lib, status, f"region {region['index']}")
        host.update(zip(region["outputs"], outs, strict=True))
        self.timeline.add(f"region {region['index']}", self.meta["host"], "region", seconds,
                          nodes=len(region["nodes"]))

    def _run_device(self, region: dict, host: dict[str, np.ndarray]) -> None:
        device = region["device"]
        session = self.sessions[device]
        for v in region["copy_in"]:
            session.write(v, host[v])
            self._transfer(f"{v} -> {device}", device, session, host[v].nbytes)
        report = session.run(region["program"])
        details = {k: v for k, v in report.items() if k != "seconds" and not isinstance(v, list)}
        self.timeline.add(f"region {region['index']}", device, "region", report["seconds"],
                          nodes=len(region["nodes"]), **details)
        hz = report["cycles"] / report["seconds"] if report.get("seconds") else 0.0
        for layer in report.get("layers", ()) if hz else ():
            self.timeline.add_inside(layer["name"], device, layer["start"] / hz,
                                     (layer["end"] - layer["start"]) / hz, macs=layer["macs"])
        for v in region["copy_out"]:
            host[v] = session.read(v)
            self._transfer(f"{v} -> host", device, session, host[v].nbytes)

    def _transfer(self, name: str, device: str, session, nbytes: int) -> None:
        self.timeline.add(name, device, "transfer", session.transfer_seconds(nbytes),
                          bytes=nbytes)

    # ---- helpers

    def _entry(self, name: str):
        fn = getattr(self._lib, name)
        fn.restype = ctypes.c_int32
        fn.argtypes = [ctypes.c_void_p] * 4
        return fn

    def _shape(self, v: str) -> list[int]:
        return self.meta["tensors"][v]["shape"]

    def _dtype(self, v: str) -> str:
        return self.meta["tensors"][v]["dtype"]

    def _check_feeds(self, feeds: dict) -> dict[str, np.ndarray]:
        from ..errors import InputError

        check_feed_names(feeds, [i.name for i in self.inputs])
        host = {}
        for info in self.inputs:
            a = np.asarray(feeds[info.name])
            if a.dtype != np.dtype(info.dtype) or list(a.shape) != list(info.shape):
                raise InputError(f"input '{info.name}' is {a.dtype}{list(a.shape)}; expected "
                                 f"{info.dtype}{info.shape}")
            host[info.name] = np.ascontiguousarray(a)
        return host


def _accelerators(regions: list[dict]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for r in regions:
        if r["kind"] != "cpu":
            seen.setdefault(r["device"], r["backend"])
    return sorted(seen.items())


def _open_device(directory: str, device: str, backend: str):
    """The session of the runtime device registered for `backend` (a plugin's)."""
    from ..target import registry

    runners = [p.value for p in registry().runtime_devices.values() if backend in p.value.backends]
    if not runners:
        raise TargetError(f"no installed plugin runs {backend} regions "
                          f"(pip install tinyc-backend-{backend})")
    reason = runners[0].not_available_reason()
    if reason:
        raise TargetError(f"{runners[0].name} is not available: {reason}")
    return runners[0].load(os.path.join(directory, "devices", device))
