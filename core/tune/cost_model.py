"""The learned cost model: predicts a candidate's time from its features
(the workload's sizes and the knob values, schedule/space.py), trained online
on every candidate measured so far, of every workload of a kernel family (so
what one layer taught serves the next shape).

Targets are log(time / the workload's default time): comparable across
workloads, and a ranking is all the search needs. The model is LightGBM's
gradient-boosted trees (the `tune` extra); without it, a random ranking, so
the search degrades to random search, and the tuner says so.

Kernel families state different knobs, so their feature rows differ in
length (an fp32 GEMM's tile and blocks, a depthwise conv's algorithm, an
accelerator's tiles and buffers): rows of each length get a model of their
own (ByLayout), and the family's tag (Tunable.features' first number) lets one
model tell apart families whose rows happen to be as long.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

import numpy as np

MIN_SAMPLES = 8  # fewer: the ranking is random


class CostModel(Protocol):
    name: str

    def fit(self, features: list[list[float]], targets: list[float]) -> None: ...

    def predict(self, features: list[list[float]]) -> np.ndarray: ...

    @property
    def trained(self) -> bool: ...


class RandomModel:
    name = "random (no cost model)"

    def __init__(self, seed: int = 0):
        self._rng = random.Random(seed)

    def fit(self, features: list[list[float]], targets: list[float]) -> None:
        pass

    def predict(self, features: list[list[float]]) -> np.ndarray:
        return np.array([self._rng.random() for _ in features])

    @property
    def trained(self) -> bool:
        return False


class GradientBoostedModel:
    name = "LightGBM gradient-boosted trees"

    def __init__(self, seed: int = 0):
        import lightgbm

        self._lgb = lightgbm
        self._seed = seed
        self._model = None

    def fit(self, features: list[list[float]], targets: list[float]) -> None:
        if len(targets) < MIN_SAMPLES:
            return
        # lightgbm's own API (its sklearn wrapper would need scikit-learn too);
        # small trees and bins of one sample: a few dozen measurements at first
        params = {"objective": "regression", "learning_rate": 0.1, "num_leaves": 15,
                  "min_data_in_leaf": 2, "min_data_in_bin": 1, "bagging_fraction": 0.9,
                  "bagging_freq": 1, "seed": self._seed, "verbose": -1, "num_threads": 1}
        data = self._lgb.Dataset(np.asarray(features, dtype=np.float64),
                                 np.asarray(targets, dtype=np.float64),
                                 params={"min_data_in_bin": 1, "verbose": -1})
        self._model = self._lgb.train(params, data, num_boost_round=80)

    def predict(self, features: list[list[float]]) -> np.ndarray:
        if self._model is None:
            return np.zeros(len(features))
        return self._model.predict(np.asarray(features, dtype=np.float64))

    @property
    def trained(self) -> bool:
        return self._model is not None


class ByLayout:
    """A model per feature-row length, each trained on its rows only; a row
    whose layout has no trained model yet is predicted 0 (no preference)."""

    def __init__(self, make: Callable[[], CostModel]):
        self._make = make
        self._models: dict[int, CostModel] = {}
        self.name = make().name

    def fit(self, features: list[list[float]], targets: list[float]) -> None:
        rows: dict[int, tuple[list, list]] = {}
        for f, t in zip(features, targets, strict=True):
            group = rows.setdefault(len(f), ([], []))
            group[0].append(f)
            group[1].append(t)
        for length, (fs, ts) in rows.items():
            self._models.setdefault(length, self._make()).fit(fs, ts)

    def predict(self, features: list[list[float]]) -> np.ndarray:
        out = np.zeros(len(features))
        for length in {len(f) for f in features}:
            model = self._models.get(length)
            if model is not None and model.trained:
                index = [i for i, f in enumerate(features) if len(f) == length]
                out[index] = model.predict([features[i] for i in index])
        return out

    @property
    def trained(self) -> bool:
        return any(m.trained for m in self._models.values())


def make_cost_model(seed: int = 0) -> tuple[CostModel, str]:
    """The gradient-boosted model if LightGBM is installed, else the random
    fallback; the message says which, and how to get the better one."""
    try:
        GradientBoostedModel(seed)  # LightGBM is there
        return ByLayout(lambda: GradientBoostedModel(seed)), ""
    except ModuleNotFoundError:
        return RandomModel(seed), ("LightGBM is not installed: searching at random "
                                   "(pip install 'tinyc[tune]' for the learned cost model)")


def spearman(predicted: list[float], measured: list[float]) -> float | None:
    """Spearman's rank correlation (ties share their mean rank); None below 3 pairs."""
    if len(predicted) < 3:
        return None
    a, b = _ranks(predicted), _ranks(measured)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(values: list[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=np.float64)
    for value in np.unique(v):  # ties: their mean rank
        same = v == value
        ranks[same] = ranks[same].mean()
    return ranks
