"""Keeping the compile cache small: a size cap with least-recently-used
eviction, and what `tinyc cache info|clear|prune` reports and does.

An entry's last use is its folder's modification time: storing an entry
creates it and loading one touches it (cache.load_entry), so the oldest
folders are the ones unused longest. After each store the cache is pruned
to the cap: TINYC_CACHE_MAX_SIZE (e.g. 2GB, 500MB, 0 or off for no cap),
default 2 GB. Partial entries (hidden temporary folders) left by a killed
process are removed once they are an hour old.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

DEFAULT_MAX_BYTES = 2 * 1000**3
STALE_TMP_SECONDS = 3600

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2,
          "gib": 1024**3, "tib": 1024**4}


def parse_size(text: str) -> int | None:
    """'2GB', '500M', '1.5GiB', '123' -> bytes; '0', 'off', 'none' -> None (no cap)."""
    t = str(text).strip().lower()
    if t in ("0", "off", "none", "unlimited"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", t)
    if not m or m.group(2) not in _UNITS:
        raise InputError(f"'{text}' is not a size; write e.g. 2GB, 500MB, 1.5GiB or 0 for no cap")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def max_bytes() -> int | None:
    configured = os.environ.get("TINYC_CACHE_MAX_SIZE")
    if configured is None:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(configured)
    except InputError as e:
        raise InputError(f"TINYC_CACHE_MAX_SIZE: {e}") from None


@dataclass(frozen=True)
class Entry:
    path: Path
    bytes: int
    last_used: float  # seconds since the epoch


# an entry's folder: its key (cache.cache_key), and a slot number for a
# symbolic model's artifacts. Anything else in the folder (test-model caches,
# the tuning database) is not the cache's to evict.
_ENTRY_NAME = re.compile(r"[0-9a-f]{32}(-\d+)?")


def entries(root: Path) -> list[Entry]:
    """The cache's entries, least recently used first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and _ENTRY_NAME.fullmatch(p.name):
            try:
                found.append(Entry(p, _folder_bytes(p), p.stat().st_mtime))
            except OSError:
                continue  # removed meanwhile by another process
    return sorted(found, key=lambda e: e.last_used)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def touch(entry: Path) -> None:
    """Record a use of this entry (its place in the LRU order)."""
    try:
        os.utime(entry)
    except OSError:
        pass  # a read-only cache still serves; it just cannot reorder


def prune(root: Path, limit: int | None, keep: Path | None = None) -> list[Entry]:
    """Remove least recently used entries until the cache fits in `limit`
    bytes (never `keep`, the entry just stored), and stale partial entries.
    Returns what was removed."""
    removed = _remove_stale_tmp(root)
    if limit is None:
        return removed
    all_entries = entries(root)
    total = sum(e.bytes for e in all_entries)
    for e in all_entries:
        if total <= limit:
            break
        if keep is not None and e.path == keep:
            continue
        shutil.rmtree(e.path, ignore_errors=True)
        total -= e.bytes
        removed.append(e)
    return removed


def _remove_stale_tmp(root: Path) -> list[Entry]:
    removed = []
    now = time.time()
    for p in root.glob(".*") if root.is_dir() else ():
        try:
            age = now - p.stat().st_mtime
        except OSError:
            continue
        if p.is_dir() and age > STALE_TMP_SECONDS:
            removed.append(Entry(p, _folder_bytes(p), p.stat().st_mtime))
            shutil.rmtree(p, ignore_errors=True)
    return removed


def clear(root: Path) -> list[Entry]:
    """Remove every entry (and partial ones); the folder itself stays."""
    gone = entries(root)
    for e in gone:
        shutil.rmtree(e.path, ignore_errors=True)
    for p in root.glob(".*") if root.is_dir() else ():
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    return gone


def info(root: Path | None) -> dict:
    """What `tinyc cache info` shows."""
    limit = max_bytes()
    if root is None:
        return {"folder": None, "enabled": False, "entries": 0, "bytes": 0, "max_bytes": limit}
    found = entries(root)
    return {"folder": str(root), "enabled": True, "entries": len(found),
            "bytes": sum(e.bytes for e in found), "max_bytes": limit,
            "oldest_use": min((e.last_used for e in found), default=None),
            "newest_use": max((e.last_used for e in found), default=None)}


def human(n: int | None) -> str:
    if n is None:
        return "no cap"
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
