"""Choosing the next token from the logits: greedy (argmax) by default, or
sampled with a temperature, restricted to the top k tokens and to the
smallest set whose probability reaches top_p (nucleus), from a seeded
numpy Generator so a seed repeats a run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy
    top_k: int = 0  # 0: every token
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        if not self.temperature >= 0:
            raise InputError(f"temperature {self.temperature} must be at least 0")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise InputError(f"top_k {self.top_k} must be an integer, at least 0")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p {self.top_p} must be in (0, 1]")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1


class Sampler:
    """sampler(logits) -> token id."""

    def __init__(self, sampling: Sampling = Sampling()):
        self.sampling = sampling
        self._rng = np.random.default_rng(sampling.seed)

    def __call__(self, logits: np.ndarray) -> int:
        if self.sampling.greedy:
            return int(np.argmax(logits))
        probs, ids = self.distribution(logits)
        return int(ids[self._rng.choice(len(ids), p=probs)])

    def distribution(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The candidates (ids, most likely first) and their probabilities."""
        s = self.sampling
        scaled = np.asarray(logits, np.float64) / s.temperature
        order = np.argsort(-scaled, kind="stable")
        if s.top_k:
            order = order[:s.top_k]
        kept = scaled[order]
        probs = np.exp(kept - kept[0])
        probs /= probs.sum()
        if s.top_p < 1:
            # the first position where the running total reaches top_p ends the nucleus
            n = int(np.searchsorted(np.cumsum(probs), s.top_p)) + 1
            order, probs = order[:n], probs[:n] / probs[:n].sum()
        return probs, order
