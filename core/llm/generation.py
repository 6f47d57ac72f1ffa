"""Text generation: a model folder compiled once (LanguageModel), and one
generation from a prompt (Generation, an iterator of text pieces or token ids
with its timings in .stats).

The session is symbolic over the sequence and past lengths, so one compile
serves the prefill and every decode step; `load` runs one 1-token step to
compile (or load from the cache) before anything is timed, so the prefill
figure is the prefill alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from ..errors import InputError, ModelFolderError
from .folder import ModelFolder, read_model_folder
from .kv_cache import DecoderIO, decoder_io
from .loop import decode_steps, step_fn
from .sampler import Sampler, Sampling
from .tokenizer import TextStream, load_tokenizer


class LanguageModel:
    """A model folder, its tokenizer and the compiled decoder."""

    def __init__(self, folder: ModelFolder, tokenizer, session, io: DecoderIO,
                 load_s: float):
        self.folder, self.tokenizer, self.session, self.io = folder, tokenizer, session, io
        self.load_s = load_s

    def encode(self, prompt: str) -> list[int]:
        return self.tokenizer.encode(prompt).ids

    def generate(self, prompt: str | list[int], max_new_tokens: int = 128,
                 sampling: Sampling | None = None, token_ids: bool = False) -> Generation:
        ids = self.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
        if not ids:
            raise InputError("the prompt encodes to no tokens")
        if max_new_tokens < 0:
            raise InputError(f"max_new_tokens {max_new_tokens} must be at least 0")
        limit = self.folder.context_length
        if limit is not None and len(ids) >= limit:
            raise InputError(f"the prompt has {len(ids)} tokens; the model's context is {limit}")
        return Generation(self, ids, max_new_tokens, Sampler(sampling or Sampling()), token_ids)


def load(model_dir: str | os.PathLike, target: str | None = None,
         threads: int | None = None, progress=None) -> LanguageModel:
    """Read the folder, compile its decoder and run one step (the compile).
    `progress`: a context manager factory (label, timings) around the compile."""
    from ..compiler import CompileOptions
    from ..session import InferenceSession

    folder = read_model_folder(model_dir)
    tokenizer = load_tokenizer(folder.tokenizer_path)
    t0 = time.perf_counter()
    options = CompileOptions(threads=threads)
    session = InferenceSession(folder.model_path, target=target, options=options)
    try:
        io = decoder_io(session.get_inputs(), session.get_outputs(), folder.names,
                        folder.layers, folder.head_size, folder.kv_heads)
    except ModelFolderError as e:
        raise ModelFolderError(f"{folder.model_path}: {e}") from None
    first = folder.bos_id if folder.bos_id is not None else 0
    if progress is None:
        _warm_up(session, io, first)
    else:
        with progress(folder.model_path, options.timings):
            _warm_up(session, io, first)
    return LanguageModel(folder, tokenizer, session, io, time.perf_counter() - t0)


def _warm_up(session, io: DecoderIO, token: int) -> None:
    session.run(io.output_names, io.feeds([token], [1], io.empty_cache()))


class Generation:
    """Iterate for the text pieces (or token ids); .tokens, .text and .stats
    hold what was generated so far, also after an interrupt."""

    def __init__(self, model: LanguageModel, prompt_ids: list[int], max_new_tokens: int,
                 sampler: Sampler, token_ids: bool):
        self.model, self.prompt_ids = model, prompt_ids
        self.max_new_tokens, self.token_ids = max_new_tokens, token_ids
        self.tokens: list[int] = []
        self.text = ""
        self.stop_reason: str | None = None  # eos, max_new_tokens, context, interrupted
        self._times: list[float] = []
        self._pieces = self._run(sampler)

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        try:
            return next(self._pieces)
        except KeyboardInterrupt:  # Ctrl-C in a model run: what was made so far stays
            self.stop_reason = "interrupted"
            raise

    def _run(self, sampler: Sampler) -> Iterator:
        model = self.model
        stream = TextStream(model.tokenizer, self.prompt_ids)
        if self.max_new_tokens == 0:
            self.stop_reason = "max_new_tokens"
            return
        steps = decode_steps(step_fn(model.session), model.io, self.prompt_ids, sampler)
        for step in steps:
            self._times.append(step.seconds)
            if step.token in model.folder.eos_ids:
                self.stop_reason = "eos"
                break
            self.tokens.append(step.token)
            piece = stream.push(step.token)
            self.text += piece
            if self.token_ids:
                yield step.token
            elif piece:
                yield piece
            self.stop_reason = self._limit()
            if self.stop_reason:
                break
        steps.close()
        tail = stream.finish()
        self.text += tail
        if tail and not self.token_ids:
            yield tail

    def _limit(self) -> str | None:
        if len(self.tokens) >= self.max_new_tokens:
            return "max_new_tokens"
        limit = self.model.folder.context_length
        if limit is not None and len(self.prompt_ids) + len(self.tokens) >= limit:
            return "context"  # the next step would feed a position past the context
        return None

    @property
    def stats(self) -> dict:
        """Prefill and decode speed (a step's time is the model run alone), and
        the session's compiles: 1 (at load; 0 when the disk cache had it) for
        every prompt and past length."""
        prefill, decoded = self._times[:1], self._times[1:]
        n = len(self.prompt_ids)
        return {"prompt_tokens": n, "new_tokens": len(self.tokens),
                "stop_reason": self.stop_reason, "load_s": round(self.model.load_s, 4),
                "prefill_ms": round(prefill[0] * 1e3, 4) if prefill else None,
                "prefill_tokens_per_s": _rate(n, sum(prefill)) if prefill else None,
                "decode_tokens_per_s": _rate(len(decoded), sum(decoded)),
                "compiles": self.model.session.compile_count}


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 2) if count and seconds > 0 else None


def generate(model: str | os.PathLike | LanguageModel, prompt: str | list[int],
             max_new_tokens: int = 128, *, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0, seed: int | None = None, token_ids: bool = False,
             target: str | None = None, threads: int | None = None) -> Generation:
    """Generate from a model folder (or a loaded LanguageModel): an iterator of
    text pieces as they decode, or of token ids with token_ids=True.

    >>> for piece in tinyc.generate("my_model_dir", "Once upon a time", 32):
    ...     print(piece, end="", flush=True)
    """
    lm = model if isinstance(model, LanguageModel) else load(model, target, threads)
    return lm.generate(prompt, max_new_tokens, Sampling(temperature, top_k, top_p, seed),
                       token_ids)
