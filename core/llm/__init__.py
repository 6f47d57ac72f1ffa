"""Text generation with a KV-cache decoder compiled by tinyc: a model folder
(an .onnx decoder, genai_config.json or config.json, tokenizer.json) in,
streamed text out. `tinyc.generate(...)` and `tinyc generate` use it.

    folder.py     what the folder holds (config formats, files)
    kv_cache.py   the decoder's inputs and outputs, the cache pairs and shapes
    loop.py       the decode loop over any session (tinyc's or onnxruntime's)
    sampler.py    greedy, temperature, top-k, top-p
    tokenizer.py  tokenizer.json and incremental detokenization
    generation.py LanguageModel, Generation, generate()
"""

from __future__ import annotations

from .generation import Generation, LanguageModel, generate, load
from .sampler import Sampler, Sampling

__all__ = ["Generation", "LanguageModel", "Sampler", "Sampling", "generate", "load"]
