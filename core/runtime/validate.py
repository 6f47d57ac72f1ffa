"""An artifact is validated, never trusted, before any of its code is loaded.

What a damaged or edited folder could otherwise do, and what stops it:
- model.json edited: its sha256 in model.json.sha256 (written beside it) no
  longer matches. The cache requires that file; a hand-made or hand-edited
  artifact without it still gets every check below.
- model.json malformed or of the wrong shape: the schema (schema.py).
- an output dropped, a shape shrunk, a smaller arena: the plan the compiler
  recorded ("plan": arena bytes, each tensor's dtype and dims) must agree with
  the tensors as listed, and the arena must be at least the plan's; native code
  writes what the plan says, so a smaller buffer would be written past.
- a different entry symbol (abort, system...): only tinyc_run is accepted.
- model.so or weights.bin changed or truncated: checksums, sizes, and an ELF
  header whose segments lie inside the file, all before dlopen (a truncated
  library can fault with SIGBUS while it is being relocated).
Every failure is an ArtifactError naming the folder and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct

from ..errors import ArtifactError
from . import schema

SIDECAR = "model.json.sha256"
MAX_META_BYTES = 64 << 20  # a model.json beyond this is not one tinyc wrote


def meta_digest_file(meta_bytes: bytes) -> bytes:
    """What Artifact.save writes to model.json.sha256."""
    return hashlib.sha256(meta_bytes).hexdigest().encode() + b"\n"


def read_meta(directory: str, require_sidecar: bool = False) -> dict:
    """model.json, parsed, after checking it against its sidecar checksum."""
    path = os.path.join(directory, "model.json")
    data = _read(path, MAX_META_BYTES)
    sidecar = os.path.join(directory, SIDECAR)
    if os.path.exists(sidecar):
        if _read(sidecar, 1024).strip() != meta_digest_file(data).strip():
            raise ArtifactError(f"{path} does not match its checksum in {SIDECAR}: the "
                                f"artifact was edited or damaged (recompile it)")
    elif require_sidecar:
        raise ArtifactError(f"{directory}: {SIDECAR} is missing, so model.json cannot be "
                            f"verified")
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ArtifactError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path} must hold a JSON object")
    return meta


def check_host(directory: str, meta: dict) -> None:
    """Everything a host (in-process) artifact must satisfy before dlopen."""
    where = os.path.join(directory, "model.json")
    schema.check(meta, schema.HOST, where)
    check_plan(meta, where)
    check_files(directory, meta, ("model.so", "weights.bin"))
    check_elf(os.path.join(directory, "model.so"))


def check_split(directory: str, meta: dict) -> None:
    where = os.path.join(directory, "model.json")
    schema.check(meta, schema.SPLIT, where)
    for r in meta["regions"]:  # only the region functions tinyc writes may be called
        if r.get("kind") == "cpu" and not re.fullmatch(r"tinyc_run_region_\d+",
                                                         str(r.get("entry"))):
            raise ArtifactError(f"{where}: region entry {r.get('entry')!r} is not a "
                                f"function tinyc writes")
    check_files(directory, meta, ("model.so", "weights.bin"))
    check_elf(os.path.join(directory, "model.so"))


def check_packaged(directory: str, meta: dict) -> None:
    schema.check(meta, schema.PACKAGED, os.path.join(directory, "model.json"))
    check_files(directory, meta, (meta.get("weights_in") or "weights.bin",))


def check_plan(meta: dict, where: str) -> None:
    """The tensors and arena as listed must be the ones the compiler planned."""
    plan, symbolic = meta["plan"], "symbolic" in meta
    if meta["arena_bytes"] < plan["arena_bytes"]:
        raise ArtifactError(f"{where}: arena_bytes {meta['arena_bytes']} is smaller than "
                            f"the {plan['arena_bytes']} bytes the compiled code uses")
    for kind in ("inputs", "outputs"):
        listed, planned = meta[kind], plan[kind]
        if len(listed) != len(planned):
            raise ArtifactError(f"{where}: {len(listed)} {kind} listed, but the compiled "
                                f"code has {len(planned)}")
        for t, p in zip(listed, planned, strict=True):
            _check_tensor(t, p, symbolic, f"{where}: {kind[:-1]} '{t['name']}'")
    if symbolic:
        _check_symbols(meta, where)


def _check_symbols(meta: dict, where: str) -> None:
    """The symbols the library's dims array holds, each bound by an input dim
    (their count is the array's length: the plan pins the inputs' dims)."""
    symbols = meta["symbolic"]["symbols"]
    named = {d for t in meta["inputs"] for d in t["shape"] if isinstance(d, str)}
    kv = meta["symbolic"].get("kv_share")
    if kv:  # a shared KV cache's capacity: the last symbol, bound from the buffers
        _check_kv_share(meta, kv, where)
        named.add(kv["symbol"])
    if len(set(symbols)) != len(symbols) or not set(symbols) <= named:
        raise ArtifactError(f"{where}: symbols {symbols} are not the inputs' named dims "
                            f"{sorted(named)}")


def _check_kv_share(meta: dict, kv: dict, where: str) -> None:
    ins, outs = ({t["name"] for t in meta[k]} for k in ("inputs", "outputs"))
    if meta["symbolic"]["symbols"][-1:] != [kv["symbol"]] or not all(
            p in ins and q in outs for p, q, _ in kv["pairs"]):
        raise ArtifactError(f"{where}: kv_share {kv} does not name the last symbol and "
                            f"inputs and outputs of the model")


def _check_tensor(t: dict, planned: list, symbolic: bool, what: str) -> None:
    """Dtype and dims as planned (native code reads and writes exactly those);
    a symbolic dim only in an artifact compiled with symbols."""
    ok = (len(planned) == 2 and planned[0] == t["dtype"] and planned[1] == t["shape"]
          and (symbolic or all(isinstance(d, int) for d in t["shape"])))
    if not ok:
        raise ArtifactError(f"{what} is {t['dtype']}{t['shape']}; the compiled code's is "
                            f"{planned[0] if planned else '?'}"
                            f"{planned[1] if len(planned) > 1 else '?'}")


def check_files(directory: str, meta: dict, required: tuple[str, ...]) -> None:
    """Every file model.json lists is there, and matches its sha256."""
    sums = meta.get("checksums", {})
    for name in required:
        if name not in sums:
            raise ArtifactError(f"{directory}/model.json has no checksum for {name}")
    for name, digest in sums.items():
        if not isinstance(name, str) or not _inside(name):
            raise ArtifactError(f"{directory}/model.json lists a file {name!r} outside the "
                                f"artifact's folder")
        path = os.path.join(directory, name)
        if _sha256(path) != digest:
            raise ArtifactError(f"{path} does not match its checksum (damaged, truncated "
                                f"or replaced; recompile)")
    if "weights_bytes" in meta and "weights.bin" in sums:
        size = os.path.getsize(os.path.join(directory, "weights.bin"))
        if size != meta["weights_bytes"]:
            raise ArtifactError(f"{directory}/weights.bin has {size} bytes, expected "
                                f"{meta['weights_bytes']}")


def _inside(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return bool(name) and "\0" not in name and not os.path.isabs(name) and ".." not in parts


def _sha256(path: str) -> str:
    """A file's digest, read in chunks: a large weights.bin is hashed through the
    page cache, not copied into this process (the runtime maps it afterwards)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror or e}") from None
    return h.hexdigest()


def _read(path: str, limit: int | None = None) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror or e}") from None
    if limit is not None and len(data) > limit:
        raise ArtifactError(f"{path} is larger than {limit} bytes; not a tinyc artifact file")
    return data


_ELF64 = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR64 = struct.Struct("<IIQQQQQQ")
PT_LOAD = 1


def check_elf(path: str) -> None:
    """A 64-bit little-endian shared object whose headers and loaded segments lie
    inside the file (a cut-off library makes dlopen fault, not fail)."""
    data = _read(path)
    if len(data) < _ELF64.size or data[:4] != b"\x7fELF":
        raise ArtifactError(f"{path} is not an ELF shared library")
    h = _ELF64.unpack_from(data)
    if h[0][4] != 2 or h[0][5] != 1 or h[1] != 3:  # ELFCLASS64, little endian, ET_DYN
        raise ArtifactError(f"{path} is not a 64-bit little-endian shared library")
    phoff, shoff, phentsize, phnum, shentsize, shnum = h[5], h[6], h[9], h[10], h[11], h[12]
    if phentsize != _PHDR64.size or phoff + phnum * phentsize > len(data) \
            or shoff + shnum * shentsize > len(data):
        raise ArtifactError(f"{path} is truncated: its headers end past the file's "
                            f"{len(data)} bytes")
    for i in range(phnum):
        kind, _, offset, _, _, filesz, _, _ = _PHDR64.unpack_from(data, phoff + i * phentsize)
        if kind == PT_LOAD and offset + filesz > len(data):
            raise ArtifactError(f"{path} is truncated: a segment ends at byte "
                                f"{offset + filesz} of {len(data)}")
