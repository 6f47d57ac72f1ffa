"""An Artifact: everything needed to run a model and nothing more."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from dataclasses import dataclass, field

from ..runtime.devices import load as load_artifact
from ..runtime.memory import give_back_freed_memory
from ..runtime.native import FORMAT_VERSION, NativeModel
from ..runtime.validate import SIDECAR, meta_digest_file


@dataclass
class Artifact:
    library: bytes  # the shared library holding tinyc_run and its kernels (b"" if packaged)
    # constants, laid out as the memory plan says; once saved, a read-only view
    # of the weights.bin written (the process keeps no second copy of them)
    weights: bytes | memoryview
    meta: dict  # entry, arena size, inputs/outputs, target, backend, versions
    listings: dict[str, str] = field(default_factory=dict)  # "ll" / "s" -> text, when emitted
    report: list[dict] = field(default_factory=list)  # per node: op, kernels, note
    # a packaging backend's files instead of model.so: libmodel.a, model.h, a runner...
    files: dict[str, bytes] = field(default_factory=dict)
    # accelerator regions' programs: device -> region stem -> RegionProgram, saved
    # under devices/<device>/ (split deployment)
    programs: dict[str, dict] = field(default_factory=dict)
    partition: object = None  # partition.Partition: where each node runs, and why

    def save(self, directory: str | os.PathLike) -> str:
        """Write model.so (or the backend's files), weights.bin (unless one of
        those holds them), the accelerators' programs, model.json (+ model.ll /
        model.s if emitted). Then `weights` is a read-only mapping of the
        weights.bin written, and the blob it was is freed."""
        d = os.fspath(directory)
        os.makedirs(d, exist_ok=True)
        meta = self.meta
        if self.programs:
            meta = {**meta, "checksums": {**meta["checksums"], **self._save_programs(d)}}
        text = json.dumps(meta, indent=1, sort_keys=True).encode()
        files = {"model.json": text, SIDECAR: meta_digest_file(text)}  # its own checksum
        if "weights_in" not in meta:
            files["weights.bin"] = self.weights
        if self.library:
            files["model.so"] = self.library
        files.update(self.files)
        for ext, text in self.listings.items():
            files[f"model.{ext}"] = text.encode()
        _write_files(d, files, self.meta.get("run", {}).get("program"))
        del files  # (it holds the weights)
        if "weights_in" not in meta and len(self.weights):
            self.weights = _mapped(os.path.join(d, "weights.bin"))
            give_back_freed_memory()  # the blob, dropped just now
        return d

    def _save_programs(self, d: str) -> dict[str, str]:
        """Write each device's region programs; their files' checksums by relative path."""
        for device, programs in self.programs.items():
            for stem, program in programs.items():
                program.save(os.path.join(d, "devices", device), stem)
        sums = {}
        for root, _, names in os.walk(os.path.join(d, "devices")):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    rel = os.path.relpath(path, d).replace(os.sep, "/")
                    sums[rel] = hashlib.sha256(f.read()).hexdigest()
        return dict(sorted(sums.items()))

    def load(self, directory: str | os.PathLike) -> NativeModel:
        """Save into `directory` and load from there (a shared library must be a file);
        a packaged artifact loads on the runtime device its backend registered."""
        self.save(directory)
        return load_artifact(directory)


def _write_files(d: str, files: dict[str, bytes], program: str | None) -> None:
    """Each file written beside its final name, then renamed over it (atomic:
    never a half-written file, and a process that maps the old one keeps it).
    `program`: a cross target's runner, made executable (qemu-user runs only those)."""
    for name, data in files.items():
        tmp = os.path.join(d, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        if name == program:
            os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(d, name))


def _mapped(path: str) -> memoryview:
    """A file's bytes, mapped read-only (shared with the runtime's mapping of it)."""
    with open(path, "rb") as f:
        return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def artifact_meta(target: str, triple: str, arena_bytes: int, inputs: list[dict],
                  outputs: list[dict], version: str, library: bytes, weights: bytes,
                  backend: str | None = None, files: dict[str, bytes] | None = None,
                  weights_in: str | None = None) -> dict:
    """model.json. `files`: a packaging backend's files, checksummed like model.so;
    `weights_in`: the one of them holding the weights (no weights.bin then)."""
    code = {"model.so": library} if library else {}
    code.update(files or {})
    if weights_in is None:
        code["weights.bin"] = weights
    return {"format": FORMAT_VERSION, "entry": "tinyc_run", "target": target, "triple": triple,
            "backend": backend, "arena_bytes": arena_bytes, "inputs": inputs,
            "outputs": outputs, "tinyc_version": version, "weights_bytes": len(weights),
            "plan": plan_record(arena_bytes, inputs, outputs),
            "checksums": {name: hashlib.sha256(data).hexdigest() for name, data in code.items()}}


def plan_record(arena_bytes: int, inputs: list[dict], outputs: list[dict]) -> dict:
    """What the compiled code reads and writes: the arena, and each tensor's
    dtype and dims (a symbolic one by its name). The loader refuses a model.json
    whose tensors or arena disagree with it (core/runtime/validate.py)."""
    def tensor(t: dict) -> list:
        return [t["dtype"], list(t["shape"])]

    return {"arena_bytes": arena_bytes, "inputs": [tensor(t) for t in inputs],
            "outputs": [tensor(t) for t in outputs]}


def cpu_meta(cpu) -> dict:
    """The machine the code was built for (a CpuTarget, or None for none): the
    runtime checks a host artifact's features against this CPU before loading
    it (core/runtime/cpu_check.py)."""
    if cpu is None:
        return {}
    return {"triple": cpu.triple, "cpu": cpu.cpu, "features": cpu.features}
