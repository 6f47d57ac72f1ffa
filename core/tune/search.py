"""Evolutionary search over a knob space, ranked by the cost model.

Each round breeds a population from the fastest candidates measured so far
(mutations: one knob to a neighbouring or random value; a few fresh random
samples keep it exploring), evolves it for a few generations keeping what the
model predicts fastest, and hands the best unmeasured ones to be measured,
with one random pick among them (epsilon-greedy), so a wrong model cannot
lock the search out of a region.
"""

from __future__ import annotations

import random

from ..schedule import Config, KnobSpace
from ..schedule.space import config_id
from .cost_model import CostModel

POPULATION = 128
GENERATIONS = 3
PARENTS = 8
FRESH = 0.2  # share of random samples in each generation


def propose(space: KnobSpace, measured: list[tuple[Config, float]], tried: set[str],
            score, model: CostModel, count: int, rng: random.Random) -> list[Config]:
    """Up to `count` configurations not in `tried`; `score(configs)` gives the
    model's predictions (lower: faster)."""
    if count <= 0:
        return []
    parents = [c for c, _ in sorted(measured, key=lambda m: m[1])[:PARENTS]] or \
        [space.defaults()]
    population = _breed(space, parents, tried, rng)
    if model.trained:
        for _ in range(GENERATIONS - 1):
            ranked = _ranked(population, score)
            population = _breed(space, ranked[:PARENTS] + parents, tried, rng) | \
                {config_id(c): c for c in ranked[:POPULATION // 2]}
        ranked = _ranked(population, score)
    else:
        ranked = list(population.values())
        rng.shuffle(ranked)
    chosen = ranked[:count]
    rest = ranked[count:]
    if model.trained and rest and len(chosen) > 1:
        chosen[-1] = rng.choice(rest)  # one exploratory pick
    return chosen


def _breed(space: KnobSpace, parents: list[Config], tried: set[str],
           rng: random.Random) -> dict[str, Config]:
    out: dict[str, Config] = {}
    for _ in range(POPULATION * 4):
        if len(out) >= POPULATION:
            break
        if rng.random() < FRESH:
            c = space.sample(rng)
        else:
            c = space.mutate(rng.choice(parents), rng)
            if rng.random() < 0.3:
                c = space.mutate(c, rng)
        ident = config_id(c)
        if ident not in tried:
            out[ident] = c
    return out


def _ranked(population: dict[str, Config], score) -> list[Config]:
    configs = list(population.values())
    if not configs:
        return []
    predicted = score(configs)
    order = sorted(range(len(configs)), key=lambda i: (float(predicted[i]), i))
    return [configs[i] for i in order]
