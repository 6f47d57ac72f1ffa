"""One tune, several kernel families: their feature rows differ in length
(an fp32 GEMM's tile and blocks, a depthwise conv's algorithm), so the cost
model keeps a model per layout; a family it has not learned yet is ranked
without preference instead of failing the tune."""

from __future__ import annotations

import random

import pytest

from tinyc.tune.cost_model import ByLayout, make_cost_model, spearman


def test_each_layout_learns_its_own_ranking():
    pytest.importorskip("lightgbm", reason="the tune extra (lightgbm) is not installed")
    model, _ = make_cost_model()
    assert isinstance(model, ByLayout)
    rng = random.Random(0)
    wide = [[1.0] + [rng.uniform(0, 8) for _ in range(7)] for _ in range(60)]
    narrow = [[2.0] + [rng.uniform(0, 8) for _ in range(3)] for _ in range(60)]

    def wide_cost(f):
        return f[2] - 0.5 * f[5]

    def narrow_cost(f):
        return -f[1] + 0.3 * f[3]

    assert list(model.predict(narrow[:5])) == [0.0] * 5  # nothing learned yet
    model.fit(wide[:40], [wide_cost(f) for f in wide[:40]])
    assert model.trained and list(model.predict(narrow[:5])) == [0.0] * 5
    model.fit(wide[:40] + narrow[:40],
              [wide_cost(f) for f in wide[:40]] + [narrow_cost(f) for f in narrow[:40]])
    mixed = wide[40:] + narrow[40:]
    predicted = list(model.predict(mixed))
    assert spearman(predicted[:20], [wide_cost(f) for f in wide[40:]]) > 0.8
    assert spearman(predicted[20:], [narrow_cost(f) for f in narrow[40:]]) > 0.8
