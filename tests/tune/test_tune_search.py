"""The search's parts alone: the rank correlation, the cost model learning a
known ranking (LightGBM), the random fallback and its message, and proposals
that are legal and new."""

from __future__ import annotations

import builtins
import random

import numpy as np
import pytest

from tinyc.schedule import Knob, KnobSpace
from tinyc.schedule.space import config_id
from tinyc.tune.cost_model import RandomModel, make_cost_model, spearman
from tinyc.tune.search import propose

SPACE = KnobSpace((Knob("tile", ([4, 3], [6, 2], [8, 3]), [8, 3]),
                   Knob("kc", (32, 64, 128, 256), 256), Knob("mc", (32, 64, 128), 64)))


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9487, abs=1e-3)  # ties
    assert spearman([1, 2], [1, 2]) is None


def test_the_cost_model_learns_a_ranking():
    pytest.importorskip("lightgbm", reason="the tune extra (lightgbm) is not installed")
    rng = random.Random(0)
    configs = [SPACE.sample(rng) for _ in range(60)]

    def cost(c):  # smaller kc and mc are slower; the 6x2 tile is slowest
        return 3.0 / c["kc"] * 64 + 64.0 / c["mc"] + (1.5 if c["tile"] == [6, 2] else 0.0)

    model, message = make_cost_model()
    assert message == ""
    model.fit([SPACE.features(c) for c in configs[:40]], [cost(c) for c in configs[:40]])
    predicted = model.predict([SPACE.features(c) for c in configs[40:]])
    assert spearman(list(predicted), [cost(c) for c in configs[40:]]) > 0.8


def test_without_lightgbm_the_search_is_random_and_says_so(monkeypatch):
    real_import = builtins.__import__

    def no_lightgbm(name, *args, **kwargs):
        if name == "lightgbm":
            raise ModuleNotFoundError("No module named 'lightgbm'", name="lightgbm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lightgbm)
    model, message = make_cost_model()
    assert isinstance(model, RandomModel) and "pip install 'tinyc[tune]'" in message


def test_proposals_are_legal_new_and_distinct():
    rng = random.Random(1)
    tried = {config_id(SPACE.defaults())}
    measured = [(SPACE.defaults(), 1.0)]
    model = RandomModel()
    out = propose(SPACE, measured, tried, lambda cs: np.zeros(len(cs)), model, 5, rng)
    assert len(out) == 5 and all(SPACE.legal(c) for c in out)
    assert len({config_id(c) for c in out} | tried) == 6
    everything = {config_id(c) for c in _all(SPACE)}
    assert propose(SPACE, measured, everything, lambda cs: np.zeros(len(cs)), model, 5,
                   rng) == []


def _all(space: KnobSpace):
    import itertools

    for values in itertools.product(*(k.values for k in space.knobs)):
        yield dict(zip(space.names, values, strict=True))


def test_the_cost_model_learns_from_other_workloads_in_the_log(tmp_path):
    """A log holding another shape's measurements (another model's layer) trains
    the model before this model's first candidate."""
    import dataclasses

    from tune_models import matmul_model

    from tinyc.compiler import CompileOptions
    from tinyc.schedule import TuningDatabase, TuningRecord
    from tinyc.tune.cost_model import RandomModel
    from tinyc.tune.tasks import extract_tasks
    from tinyc.tune.tuner import TuneOptions, _Driver

    (task,) = extract_tasks(matmul_model(), "x86", CompileOptions(default_tuning=False))
    other = dataclasses.replace(task.tunable.workload, dims=(("m", 128), ("n", 80), ("k", 96)),
                                shapes=((128, 96), (96, 80), (128, 80)))
    space, rng = task.tunable.space, random.Random(0)
    configs = [space.defaults()] + [space.sample(rng) for _ in range(5)]
    db = TuningDatabase([TuningRecord(other, c, (1e-5 * (i + 1),), 0.0)
                         for i, c in enumerate(configs)])
    driver = _Driver("x86", TuneOptions(tmp_path / "log.jsonl"), db, RandomModel(), [task],
                     lambda p: None)
    assert len(driver.targets) == 6 and driver.targets[0] == 0.0
    assert driver.targets[5] == pytest.approx(np.log(6.0))
