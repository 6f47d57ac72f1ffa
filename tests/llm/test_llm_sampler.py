"""Greedy and sampled token choice (sampler.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.errors import InputError
from tinyc.llm import Sampler, Sampling

LOGITS = np.log(np.array([0.05, 0.5, 0.2, 0.15, 0.1], np.float32))


def test_greedy_is_argmax_and_top_k_1_is_greedy_at_any_temperature():
    assert Sampler()(LOGITS) == 1
    sampler = Sampler(Sampling(temperature=5.0, top_k=1, seed=3))
    assert all(sampler(np.roll(LOGITS, k)) == (1 + k) % 5 for k in range(5))


def test_a_seed_repeats_the_draws():
    def draws(seed):
        s = Sampler(Sampling(temperature=1.0, seed=seed))
        return [s(LOGITS) for _ in range(50)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert set(draws(7)) > {1}  # it samples: not only the most likely token


def test_top_k_and_top_p_restrict_the_candidates():
    probs, ids = Sampler(Sampling(temperature=1.0, top_k=3)).distribution(LOGITS)
    assert ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(probs, np.array([0.5, 0.2, 0.15]) / 0.85, rtol=1e-6)
    # the nucleus: the smallest set whose probability reaches top_p (0.5 + 0.2 >= 0.7)
    probs, ids = Sampler(Sampling(temperature=1.0, top_p=0.7)).distribution(LOGITS)
    assert ids.tolist() == [1, 2]
    np.testing.assert_allclose(probs, [0.5 / 0.7, 0.2 / 0.7], rtol=1e-6)
    # temperature sharpens: at 0.5 the probabilities are squared, renormalized
    probs, _ = Sampler(Sampling(temperature=0.5)).distribution(LOGITS)
    want = np.sort(np.exp(LOGITS.astype(np.float64)) ** 2)[::-1]
    np.testing.assert_allclose(probs, want / want.sum(), rtol=1e-6)
    drawn = {Sampler(Sampling(temperature=1.0, top_k=2, seed=s))(LOGITS) for s in range(40)}
    assert drawn == {1, 2}


@pytest.mark.parametrize("kwargs", [{"temperature": -1.0}, {"top_k": -2}, {"top_p": 0.0},
                                    {"top_p": 1.5}, {"temperature": float("nan")}])
def test_bad_settings_are_input_errors(kwargs):
    with pytest.raises(InputError):
        Sampling(**kwargs)
