"""The compile cache: artifacts on disk, keyed by everything that shapes them.

The key covers the model's bytes, the resolved target (spec fields, LLVM cpu
target and the bytes of the intrinsic files it uses), the concrete input shapes,
the compile options and fingerprints of tinyc's own source and of the target's
plugin package (its Python and the helper C / linker files it builds into
artifacts), so a changed compiler, plugin or intrinsic file never reuses a stale
artifact.
Entries are written to a temporary folder and renamed into place (atomic); an
entry that fails to load or verify is deleted and rebuilt.

TINYC_CACHE_DIR sets the folder (default: the platform's user cache folder,
from platformdirs: ~/.cache/tinyc on Linux, honouring XDG_CACHE_HOME;
~/Library/Caches/tinyc on macOS; %LOCALAPPDATA%\\tinyc\\Cache on Windows);
TINYC_CACHE_DIR=off disables the disk cache. The cache is capped in size,
least recently used entries first out (cache_evict.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from . import cache_evict
from .link.artifact import Artifact
from .paths import cache_root, platform_cache_dir  # noqa: F401  (where entries live)
from .runtime.devices import load
from .runtime.native import NativeModel


@functools.cache
def source_fingerprint() -> str:
    """Hash of tinyc's own source files and shipped specs."""
    return _hash_tree(Path(__file__).resolve().parent, (".py", ".yaml", ".c", ".h"))


def _hash_tree(root: Path, suffixes: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name.endswith(suffixes) and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


# What a plugin package may build artifacts from: its code, specs, and the helper
# sources it compiles into them (startup code, runtime C, linker scripts).
PLUGIN_SOURCES = (".py", ".yaml", ".c", ".h", ".S", ".s", ".ld", ".in")


def plugin_package_dir(backend: object) -> Path | None:
    """The folder of the installed package that defines a backend object."""
    top = type(backend).__module__.split(".")[0]
    module = sys.modules.get(top)
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None


def plugin_source_fingerprint(package_dir: Path | None) -> str:
    """Hash of a plugin package's sources; an edited helper C file changes it."""
    if package_dir is None or package_dir == Path(__file__).resolve().parent:
        return ""  # tinyc's own backends: covered by source_fingerprint
    return _hash_tree(package_dir, PLUGIN_SOURCES)  # a few small files: hashed per compile


def cache_key(model_bytes: bytes, device_fields: list[dict], shapes: dict,
              options: dict) -> str:
    h = hashlib.sha256()
    h.update(model_bytes)
    h.update(json.dumps({"device": device_fields, "shapes": shapes, "options": options,
                         "tinyc": source_fingerprint()}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def device_fields(device) -> dict:
    """What identifies a device in a key: its spec, its CPU (none for an accelerator),
    its plugin package's sources and the intrinsic files it uses (the spec names
    them only, and a user's file beside the spec is no plugin source)."""
    return {"spec": device.spec.fields, "cpu": asdict(device.cpu) if device.cpu else None,
            "plugin_sources": plugin_source_fingerprint(plugin_package_dir(device.backend)),
            "intrinsics": [[s.name, s.digest] for s in device.intrinsics]}


def load_entry(root: Path, key: str) -> NativeModel | None:
    entry = root / key
    if not entry.is_dir():
        return None
    try:
        model = load(entry, verify=True)
        cache_evict.touch(entry)  # its place in the least-recently-used order
        return model
    except Exception:  # corrupt, partial or edited (ArtifactError): drop it and rebuild
        shutil.rmtree(entry, ignore_errors=True)
        return None


def store_entry(root: Path, key: str, artifact: Artifact) -> NativeModel:
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    artifact.save(tmp)
    for _ in range(2):
        try:
            os.rename(tmp, root / key)
        except OSError:  # another process stored it first; keep theirs if it verifies
            hit = load_entry(root, key)  # a bad one is dropped: try again with ours
            if hit is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                return hit
            continue
        cache_evict.prune(root, cache_evict.max_bytes(), keep=root / key)
        return load(root / key, verify=True)
    return load(tmp, verify=True)  # could not put it in place: use it where it is
