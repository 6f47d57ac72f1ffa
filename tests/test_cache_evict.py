"""The compile cache's folder, size cap and least-recently-used eviction, and
`tinyc cache info|clear|prune`."""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import pytest
from tests_support import small_model

import tinyc
from tinyc import cache, cache_evict
from tinyc.cli import main


def _key(name: str) -> str:
    """A cache entry's folder name (a 32-hex-digit key) standing for `name`."""
    return name if name.startswith(".") else hashlib.md5(name.encode()).hexdigest()


def _entry(root, name: str, nbytes: int, used: float):
    d = root / _key(name)
    d.mkdir(parents=True)
    (d / "weights.bin").write_bytes(b"\0" * nbytes)
    os.utime(d, (used, used))
    return d


def test_sizes_parse():
    assert cache_evict.parse_size("2GB") == 2 * 1000**3
    assert cache_evict.parse_size("500 MB") == 500 * 1000**2
    assert cache_evict.parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert cache_evict.parse_size("123") == 123
    assert cache_evict.parse_size("off") is None
    with pytest.raises(ValueError, match="not a size"):
        cache_evict.parse_size("lots")


def test_default_cap_and_env(monkeypatch):
    monkeypatch.delenv("TINYC_CACHE_MAX_SIZE", raising=False)
    assert cache_evict.max_bytes() == 2 * 1000**3
    monkeypatch.setenv("TINYC_CACHE_MAX_SIZE", "10MB")
    assert cache_evict.max_bytes() == 10 * 1000**2


def test_prune_removes_least_recently_used_first(tmp_path):
    now = time.time()
    old = _entry(tmp_path, "old", 400, now - 300)
    mid = _entry(tmp_path, "mid", 400, now - 200)
    new = _entry(tmp_path, "new", 400, now - 100)
    removed = cache_evict.prune(tmp_path, 900)
    assert [e.path for e in removed] == [old]
    assert mid.exists() and new.exists()
    cache_evict.touch(mid)  # used now: newest
    cache_evict.prune(tmp_path, 500)
    assert mid.exists() and not new.exists()


def test_prune_keeps_the_entry_just_stored(tmp_path):
    only = _entry(tmp_path, "big", 1000, time.time() - 50)
    assert cache_evict.prune(tmp_path, 10, keep=only) == []
    assert only.exists()


def test_folders_that_are_not_entries_are_never_evicted(tmp_path):
    """Test-model caches and the tuning database live beside the entries."""
    models = tmp_path / "llm_models"
    models.mkdir()
    (models / "gpt2.onnx").write_bytes(b"\0" * 5000)
    old = _entry(tmp_path, "old", 400, time.time() - 300)
    assert [e.path for e in cache_evict.entries(tmp_path)] == [old]
    cache_evict.prune(tmp_path, 0)
    cache_evict.clear(tmp_path)
    assert models.exists() and not old.exists()


def test_stale_partial_entries_go(tmp_path):
    stale = _entry(tmp_path, ".abc-tmp", 10, time.time() - 2 * cache_evict.STALE_TMP_SECONDS)
    fresh = _entry(tmp_path, ".def-tmp", 10, time.time())
    cache_evict.prune(tmp_path, None)
    assert not stale.exists() and fresh.exists()


def test_platform_folder_unless_configured(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # platformdirs honours it on Linux
    assert cache.cache_root() == cache.platform_cache_dir()
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert cache.cache_root() == tmp_path / "tinyc"
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")
    assert cache.cache_root() is None


def test_sessions_store_within_the_cap(monkeypatch, tmp_path):
    """A real store prunes: a cap below two entries keeps only the newest."""
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("TINYC_CACHE_MAX_SIZE", "1")
    x = np.zeros((1, 3, 8, 8), np.float32)
    for seed_path in ("a.onnx", "b.onnx"):
        model = small_model(tmp_path / seed_path)
        tinyc.InferenceSession(model, target="x86", options=tinyc.CompileOptions(fuse=False)
                               if seed_path == "b.onnx" else None).run(None, {"x": x})
    assert len(cache_evict.entries(tmp_path / "c")) == 1


def test_cache_commands(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path))
    now = time.time()
    _entry(tmp_path, "a", 3000, now - 30)
    _entry(tmp_path, "b", 3000, now - 20)
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 2 and info["bytes"] == 6000 and info["folder"] == str(tmp_path)
    assert main(["cache", "prune", "--max-size", "4kB"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert [e.path.name for e in cache_evict.entries(tmp_path)] == [_key("b")]
    assert main(["cache", "clear", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 1
    assert cache_evict.entries(tmp_path) == []
    assert main(["cache", "info"]) == 0
    assert "entries  0" in capsys.readouterr().out
