"""An Artifact: everything needed to run a model and nothing more."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from ..runtime.native import FORMAT_VERSION, NativeModel


@dataclass
class Artifact:
    library: bytes  # the shared library holding tinyc_run and its kernels
    weights: bytes  # constants, laid out as the memory plan says
    meta: dict  # entry, arena size, inputs/outputs, target, versions
    listings: dict[str, str] = field(default_factory=dict)  # "ll" / "s" -> text, when emitted
    report: list[dict] = field(default_factory=list)  # per node: op, kernels, note

    def save(self, directory: str | os.PathLike) -> str:
        """Write model.so, weights.bin, model.json (+ model.ll / model.s if emitted)."""
        d = os.fspath(directory)
        os.makedirs(d, exist_ok=True)
        files = {"model.so": self.library, "weights.bin": self.weights,
                 "model.json": json.dumps(self.meta, indent=1, sort_keys=True).encode()}
        for ext, text in self.listings.items():
            files[f"model.{ext}"] = text.encode()
        for name, data in files.items():
            tmp = os.path.join(d, f".{name}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(d, name))  # atomic: never a half-written file
        return d

    def load(self, directory: str | os.PathLike) -> NativeModel:
        """Save into `directory` and load from there (a shared library must be a file)."""
        self.save(directory)
        return NativeModel(os.fspath(directory))


def artifact_meta(target: str, triple: str, arena_bytes: int, inputs: list[dict],
                  outputs: list[dict], version: str, library: bytes, weights: bytes) -> dict:
    return {"format": FORMAT_VERSION, "entry": "tinyc_run", "target": target, "triple": triple,
            "arena_bytes": arena_bytes, "inputs": inputs, "outputs": outputs,
            "tinyc_version": version, "weights_bytes": len(weights),
            "checksums": {"model.so": hashlib.sha256(library).hexdigest(),
                          "weights.bin": hashlib.sha256(weights).hexdigest()}}
