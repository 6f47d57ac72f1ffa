"""The decode loop with a KV cache, batch 1: a prefill over the prompt, then
one step per token, each feeding the presents back as the past.

`decode_steps` is an endless generator of steps; the caller stops it (after
n tokens, at an end-of-sequence token, at the context length). It runs any
session with onnxruntime's `run(output_names, feeds)`, tinyc's or
onnxruntime's, so tests drive both through the same feeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .kv_cache import DecoderIO

# a model step: (output names, feeds) -> outputs in that order
StepFn = Callable[[list[str], dict], Sequence]


@dataclass
class Step:
    token: int  # the token picked from this step's last logits
    logits: np.ndarray  # the last position's logits [vocab]
    seconds: float  # the model run alone (feeds built before the clock starts)
    fed: int  # tokens this step fed: the prompt's length at the prefill, then 1


def step_fn(session_or_fn) -> StepFn:
    """A session's run, or a callable (names, feeds) -> outputs as it is."""
    run = getattr(session_or_fn, "run", None)
    return run if run is not None else session_or_fn


def decode_steps(step: StepFn, io: DecoderIO, prompt_ids: Sequence[int],
                 pick: Callable[[np.ndarray], int], *, cache: dict | None = None,
                 start_past: int = 0,
                 clock: Callable[[], float] = time.perf_counter) -> Iterator[Step]:
    """Steps after `prompt_ids`: step 0 runs the whole prompt (the prefill);
    each next one feeds the token picked last. `pick` chooses a token from the
    last position's logits (float32).

    `cache`: the past to start from (default: empty); `start_past` replaces it
    by that many rows of zeros masked out by the attention mask (for engines
    that cannot take a zero-size dim).
    """
    ids = [int(t) for t in prompt_ids]
    if not ids:
        raise ValueError("the prompt needs at least one token")
    kv = dict(cache) if cache is not None else io.empty_cache()
    if start_past:
        kv = io.empty_cache(length=start_past)
    mask = [0] * start_past
    names = io.output_names
    while True:
        mask += [1] * len(ids)
        feeds = io.feeds(ids, mask, kv)
        t0 = clock()
        outs = step(names, feeds)
        seconds = clock() - t0
        last = np.asarray(outs[0])[0, -1].astype(np.float32, copy=False)
        token = int(pick(last))
        yield Step(token, last, seconds, len(ids))
        kv = {c.past: o for c, o in zip(io.cache, outs[1:], strict=True)}
        ids = [token]
