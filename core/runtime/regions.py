"""Running an artifact whose plan has several regions (split deployment): host
regions in the model library, accelerator regions on their device, tensors
moved explicitly between host and device memory.

Regions run in the order of the plan (model.json). Before an accelerator region
its `copy_in` tensors are written to the device, after it its `copy_out`
tensors are read back; everything else stays where it is. Each run records a
timeline (timeline.py). A plan of one CPU region is not run here: NativeModel
makes its one entry call.
"""

from __future__ import annotations

import os
import time

import numpy as np

from . import validate
from .native import NativeModel, entry_function
from .status import status_error
from .timeline import Timeline


def is_split(meta: dict) -> bool:
    """Does the plan need more than the library's one entry call?"""
    regions = meta.get("regions") or ()
    return len(regions) > 1 or any(r["kind"] != "cpu" for r in regions)


class RegionModel(NativeModel):
    """A loaded artifact of several regions: run(output_names, feeds) like NativeModel,
    plus the last run's timeline (trace())."""

    def _validate(self, directory: str) -> None:
        validate.check_split(directory, self.meta)

    def _bind_entries(self, directory: str) -> None:
        self.regions: list[dict] = self.meta["regions"]
        self._entries = {r["index"]: entry_function(self._lib, r["entry"], directory)
                         for r in self.regions if r["kind"] == "cpu"}
        self.sessions = {d: _open_device(directory, d, b) for d, b in _accelerators(self.regions)}
        self.timeline = Timeline()

    @property
    def devices(self) -> list[str]:
        return [self.meta["host"], *self.sessions]

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]
            ) -> list[np.ndarray]:
        host = dict(zip([i.name for i in self.inputs], self._check_feeds(feeds), strict=True))
        wanted = self._check_output_names(output_names)
        with self._lock:  # host regions share one arena
            self.timeline = Timeline()
            for region in self.regions:
                if region["kind"] == "cpu":
                    self._run_host(region, host)
                else:
                    self._run_device(region, host)
        return [host[self.outputs[j].name] for j in wanted]

    def trace(self) -> dict:
        """The last run's timeline in Chrome's trace format."""
        return self.timeline.chrome_trace(self.devices)

    def _run_host(self, region: dict, host: dict[str, np.ndarray]) -> None:
        import ctypes

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

    def _shape(self, v: str) -> list[int]:
        return self.meta["tensors"][v]["shape"]

    def _dtype(self, v: str) -> str:
        return self.meta["tensors"][v]["dtype"]


def _accelerators(regions: list[dict]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for r in regions:
        if r["kind"] != "cpu":
            seen.setdefault(r["device"], r["backend"])
    return sorted(seen.items())


def _open_device(directory: str, device: str, backend: str):
    """The session of the runtime device registered for `backend` (a plugin's)."""
    from .devices import runtime_device_for

    runner = runtime_device_for(backend, device)
    return runner.load(os.path.join(directory, "devices", device))
