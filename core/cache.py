"""The compile cache: artifacts on disk, keyed by everything that shapes them.

The key covers the model's bytes, the resolved target (spec fields and LLVM
cpu target), the concrete input shapes, the compile options and a fingerprint
of tinyc's own source, so a changed compiler never reuses a stale artifact.
Entries are written to a temporary folder and renamed into place (atomic); an
entry that fails to load or verify is deleted and rebuilt.

TINYC_CACHE_DIR sets the folder (default: $XDG_CACHE_HOME/tinyc or
~/.cache/tinyc); TINYC_CACHE_DIR=off disables the disk cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from .link.artifact import Artifact
from .runtime.devices import load
from .runtime.native import NativeModel


def cache_root() -> Path | None:
    configured = os.environ.get("TINYC_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "none") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinyc"


@functools.cache
def source_fingerprint() -> str:
    """Hash of tinyc's own source files and shipped specs."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".yaml", ".c") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_key(model_bytes: bytes, device_fields: list[dict], shapes: dict,
              options: dict) -> str:
    h = hashlib.sha256()
    h.update(model_bytes)
    h.update(json.dumps({"device": device_fields, "shapes": shapes, "options": options,
                         "tinyc": source_fingerprint()}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def device_fields(device) -> dict:
    """What identifies a device in a key: its spec, and its CPU (none for an accelerator)."""
    return {"spec": device.spec.fields, "cpu": asdict(device.cpu) if device.cpu else None}


def load_entry(root: Path, key: str) -> NativeModel | None:
    entry = root / key
    if not entry.is_dir():
        return None
    try:
        return load(entry, verify=True)
    except Exception:  # corrupt or partial entry: drop it and rebuild
        shutil.rmtree(entry, ignore_errors=True)
        return None


def store_entry(root: Path, key: str, artifact: Artifact) -> NativeModel:
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    artifact.save(tmp)
    try:
        os.rename(tmp, root / key)
    except OSError:  # another process stored it first; keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return load(root / key, verify=True)
