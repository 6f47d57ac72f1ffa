"""`tinyc tune --ray` in the default run: a local one-node Ray instance (the
pool starts it with this machine's target resource) tunes a MatMul, a target
no node offers fails at once, and without Ray the error says what to install.
The multi-node cluster tests are in test_ray_cluster.py (-m ray_full)."""

from __future__ import annotations

import sys

import pytest
from tune_models import matmul_model

from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.schedule import TuningDatabase
from tinyc.tune import TuneOptions, tune


@pytest.fixture
def ray_env(monkeypatch):
    monkeypatch.setenv("RAY_DISABLE_USAGE_STATS", "1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray = pytest.importorskip("ray", reason="ray (the `ray` extra) is not installed")
    yield ray
    if ray.is_initialized():  # a failed test must not leave a Ray instance running
        ray.shutdown()


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    model = tmp_path / "m.onnx"
    model.write_bytes(matmul_model().SerializeToString())
    assert main(["tune", str(model), "--log", str(tmp_path / "t.jsonl"), "--ray"]) != 0
    assert "pip install tinyc[ray]" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_a_local_ray_instance_tunes_a_matmul(tmp_path, ray_env):
    from tinyc.tune.ray_pool import RayPool

    pool = RayPool("x86", "local", timeout_s=60)
    with pytest.raises(TinycError, match=r"'tinyc-target:x86-avx2'.*ray start --address"):
        RayPool("x86-avx2")  # this machine's instance offers x86 only
    log = tmp_path / "t.jsonl"
    summary = tune(matmul_model(), "x86", TuneOptions(log, trials=3, runner=pool))
    assert not ray_env.is_initialized()  # the pool started Ray, tune closed it
    assert summary.new_trials == 3 and summary.failures == 0
    db = TuningDatabase.load(log)
    (key,) = db.keys()
    assert len(db.tried(key)) == 3 and all(r.ok for r in db.of(key))
    (node,) = {n for pair in pool.placements for n in pair}  # one node built and timed
    assert len(pool.placements) == len(db.of(key))
