"""Where tinyc keeps files between runs. At the bottom of the import graph:
the compile cache (cache.py) and the LLVM name probe (target/llvm_names.py)
both live under it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path | None:
    """The artifact cache folder; None when TINYC_CACHE_DIR turns caching off."""
    configured = os.environ.get("TINYC_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "none") else Path(configured)
    return platform_cache_dir()


def platform_cache_dir() -> Path:
    """The platform's user cache folder (platformdirs: ~/.cache/tinyc on Linux,
    ~/Library/Caches/tinyc on macOS); the XDG default in a runtime-only install."""
    try:
        import platformdirs
    except ModuleNotFoundError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "tinyc"
    return Path(platformdirs.user_cache_dir("tinyc", appauthor=False))


def default_tuning_log() -> Path | None:
    """The tuning database applied to every compile: tuning.jsonl in the cache
    folder (a file there is no cache entry, so eviction and `tinyc cache clear`
    keep it); None when TINYC_CACHE_DIR turns the cache off."""
    root = cache_root()
    return None if root is None else root / "tuning.jsonl"
