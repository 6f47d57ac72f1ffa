"""A decode step that keeps the KV cache in one buffer per past/present pair
(IOBinding.bind_kv_cache), for greedy_decode in tests and benchmarks:

    step = SharedCacheStep(sess, empty_past(path), capacity=1024)
    result = greedy_decode(step, prompt, 128, past=empty_past(path))

greedy_decode feeds the presents of a step back as the next past; this step
reads only the past's length from them, since its buffers already hold the
rows. The presents it returns are views of the buffers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class SharedCacheStep:
    def __init__(self, sess, past: Mapping[str, np.ndarray], capacity: int,
                 present_names: list[str] | None = None):
        """`past`: the past_* feeds (for their names, dtypes and shapes), in the
        order of the model's present outputs; `present_names` default to
        'present' + the past name after its first '.' (past_key_values.0.key ->
        present.0.key)."""
        self.sess = sess
        self.pasts = list(past)
        self.presents = present_names or ["present." + n.split(".", 1)[1] for n in self.pasts]
        self.buffers = {n: np.zeros(a.shape[:-2] + (capacity, a.shape[-1]), a.dtype)
                        for n, a in past.items()}
        self.io = sess.io_binding()
        first = [o.name for o in sess.get_outputs() if o.name not in self.presents]
        for name in first:  # get_outputs returns the outputs in bind order
            self.io.bind_output(name)

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        past_len = feeds[self.pasts[0]].shape[-2]
        new_len = feeds["input_ids"].shape[-1]
        for name, a in feeds.items():
            if name not in self.buffers:
                self.io.bind_cpu_input(name, a)
        for past, present in zip(self.pasts, self.presents, strict=True):
            self.io.bind_kv_cache(past, present, self.buffers[past], past_len, new_len)
        self.sess.run_with_iobinding(self.io)
        return self.io.get_outputs()
