"""A GPT-2 decoder from `transformers`, exported to ONNX with its KV cache as
inputs and outputs, for tests and benchmarks of symbolic shapes (issue 11).

    path = gpt2_with_kv_cache()                       # 4 layers, hidden 256, cached
    sess = onnxruntime.InferenceSession(path)
    result = greedy_decode(sess, prompt_ids=[1, 2, 3], steps=128, past=empty_past(path))

The model is `transformers.GPT2LMHeadModel(GPT2Config(...))` with seeded random
weights (torch.manual_seed(seed) before it is built), in eval mode, with the
eager attention (MatMul, Softmax: no fused attention op). A small wrapper module
feeds the cache in as a transformers DynamicCache and returns its tensors, so
the graph has

    inputs   input_ids                    int64 [batch, seq]
             attention_mask               int64 [batch, total]       total = past + seq
             past_key_values.{i}.key      float [batch, heads, past, head_dim]
             past_key_values.{i}.value    float [batch, heads, past, head_dim]
    outputs  logits                       float [batch, seq, vocab]
             present.{i}.key              float [batch, heads, past + seq, head_dim]
             present.{i}.value            float [batch, heads, past + seq, head_dim]

Position ids are not an input: the model numbers the new tokens from the past
length (no left padding). `batch`, `seq`, `past` and `total` are dim_params.

Two exporters, both run correctly by onnxruntime with past length 0 and > 0:
- "dynamo" (default): torch.onnx.export(dynamo=True) with torch.export Dims;
  opset 18, a lean graph (few Shape ops: the sizes are computed from the
  inputs' Shape once). The presents' length is the dim_param "past + seq"
  (an expression, as torch.export names it) and the mask's length is its own
  symbol "total": torch.export cannot declare total = past + seq.
- "torchscript": the legacy tracer (dynamo=False) with dynamic_axes; opset 17,
  the Shape/Gather/Unsqueeze/Concat chains of the classic exporter. The
  presents' length is declared "total" (equal to the mask's length for any
  valid feed). It warns about traced branches; they are the ones valid for
  any past length: past length 0 is handled by `keys.shape[-2]` being 0, and
  a mask as long as past + seq needs no padding branch.

Decoding starts with a past of length 0 (a prefill of the prompt: seq = len(prompt),
past = 0); onnxruntime accepts zero-size inputs. For an engine that cannot take
a zero-size dim, greedy_decode(start_past=n) starts from n zero rows masked out
by attention_mask instead; the positions of the real tokens then start at n,
so its tokens differ from a start_past=0 decode (compare engines at the same n).

Exports take a few seconds, so they are kept on disk keyed by the arguments,
the torch / transformers / onnx versions and this file's text
($TINYC_LLM_MODEL_CACHE, default ~/.cache/tinyc/llm_models).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

EXPORTERS = ("dynamo", "torchscript")


def gpt2_with_kv_cache(path_or_dir: str | os.PathLike | None = None, layers: int = 4,
                       hidden: int = 256, heads: int = 4, vocab: int = 1000,
                       positions: int = 2048, seed: int = 0, exporter: str = "dynamo",
                       batch_dim: bool = True) -> str:
    """The path of the exported .onnx (see the module doc).

    `path_or_dir`: a path ending in .onnx gets a copy of the export; any other
    path is the cache folder; None: $TINYC_LLM_MODEL_CACHE or
    ~/.cache/tinyc/llm_models. `batch_dim=False` fixes the batch at 1.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter {exporter!r} is not one of {EXPORTERS}")
    if hidden % heads:
        raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
    args = {"layers": layers, "hidden": hidden, "heads": heads, "vocab": vocab,
            "positions": positions, "seed": seed, "exporter": exporter, "batch_dim": batch_dim}
    target = None
    folder = path_or_dir
    if path_or_dir is not None and os.fspath(path_or_dir).endswith(".onnx"):
        target, folder = os.fspath(path_or_dir), None
    folder = os.fspath(folder) if folder is not None else _default_cache_dir()
    os.makedirs(folder, exist_ok=True)
    name = (f"gpt2_l{layers}_h{hidden}_a{heads}_v{vocab}_p{positions}_s{seed}_{exporter}"
            f"{'' if batch_dim else '_b1'}_{_key(args)}.onnx")
    cached = os.path.join(folder, name)
    if not _valid(cached):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".onnx.tmp")
        os.close(fd)
        try:
            _export(tmp, **args)
            os.chmod(tmp, 0o644)
            os.replace(tmp, cached)  # atomic: concurrent workers never read half a file
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    if target is None:
        return cached
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    shutil.copyfile(cached, target)
    return target


def input_names(layers: int) -> list[str]:
    return ["input_ids", "attention_mask"] + [f"past_key_values.{i}.{kv}" for i in range(layers)
                                              for kv in ("key", "value")]


def output_names(layers: int) -> list[str]:
    return ["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def empty_past(model, batch: int = 1, length: int = 0) -> dict[str, np.ndarray]:
    """Zero past_key_values.* feeds of `length` rows for a model exported here
    (a path or an onnx.ModelProto): the cache's dims are read off its inputs
    as `tinyc generate` reads them (tinyc.llm.kv_cache)."""
    import onnx

    from ..llm.kv_cache import decoder_io
    from ..session_models import declared_inputs, declared_outputs

    proto = onnx.load(model, load_external_data=False) if isinstance(model, (str, os.PathLike)) \
        else model
    io = decoder_io(declared_inputs(proto), declared_outputs(proto))
    return io.empty_cache(batch, length)


@dataclass
class DecodeResult:
    tokens: list[int]  # the generated tokens, not the prompt
    times: list[float]  # seconds per step: times[0] the prefill, then one per decode step
    logits: list[np.ndarray] = field(default_factory=list)  # per step, last position (keep_logits)

    @property
    def prefill_s(self) -> float:
        return self.times[0]

    @property
    def decode_s(self) -> list[float]:
        return self.times[1:]

    def summary(self) -> dict[str, float]:
        """prefill ms, decode ms/token (median, p90, max) and decode tokens/s."""
        d = sorted(self.decode_s) or [float("nan")]
        med = statistics.median(d)
        return {"prefill_ms": self.prefill_s * 1e3, "median_ms": med * 1e3,
                "p90_ms": d[min(len(d) - 1, int(0.9 * len(d)))] * 1e3, "max_ms": d[-1] * 1e3,
                "tokens_per_s": len(d) / sum(d) if sum(d) > 0 else float("nan")}


def greedy_decode(run_step, prompt_ids: Sequence[int], steps: int, *,
                  past: Mapping[str, np.ndarray], start_past: int = 0,
                  keep_logits: bool = False,
                  clock: Callable[[], float] = time.perf_counter,
                  pick: Callable[[np.ndarray], int] | None = None,
                  io=None) -> DecodeResult:
    """Greedy decoding of `steps` tokens after `prompt_ids` (batch 1), by the
    decode loop of `tinyc generate` (tinyc.llm.loop).

    `run_step` is a session (anything with .run(names, feeds), onnxruntime's or
    tinyc's) or a callable feeds -> outputs, the outputs in the model's order:
    logits, then present.{i}.key / value in the order of the past_* feeds in
    `past` (see empty_past). Step 0 runs the whole prompt (the prefill); each
    next step feeds the last token with the presents as the past. A step's time
    is the run alone (the feeds are built before the clock starts).

    `start_past`: rows of zeros prepended to the past, masked out (see the
    module doc); 0 starts from an empty past. `pick` replaces the argmax that
    chooses each next token (see genai_models.genai_forced_logits). `io`: the
    model's DecoderIO (tinyc.llm.kv_cache) when it has inputs beyond these,
    such as position_ids (optimum_models.optimum_greedy_decode).
    """
    from ..llm.loop import decode_steps, step_fn

    io = io or _gpt2_io(past)
    step = step_fn(run_step) if hasattr(run_step, "run") else (lambda _, feeds: run_step(feeds))
    result = DecodeResult([], [])
    cache = {n: np.asarray(a, np.float32) for n, a in past.items()}
    loop = decode_steps(step, io, prompt_ids, pick or (lambda logits: int(np.argmax(logits))),
                        cache=cache, start_past=start_past, clock=clock)
    for _, s in zip(range(steps), loop, strict=False):
        result.times.append(s.seconds)
        result.tokens.append(s.token)
        if keep_logits:
            result.logits.append(np.array(s.logits, copy=True))
    loop.close()
    return result


def _gpt2_io(past: Mapping[str, np.ndarray]):
    """The IO of a model exported here, its cache dims from the `past` feeds."""
    from ..llm.kv_cache import CacheTensor, DecoderIO

    cache = tuple(CacheTensor(n, n.replace("past_key_values", "present", 1),
                              (a.shape[0], a.shape[1], "past", a.shape[3]), np.dtype(np.float32), 2)
                  for n, a in past.items())
    return DecoderIO("input_ids", "attention_mask", None, "logits", cache,
                     {"input_ids": np.dtype(np.int64), "attention_mask": np.dtype(np.int64)})


def prefill_logits(run_step, token_ids: Sequence[int], past: Mapping[str, np.ndarray]
                   ) -> np.ndarray:
    """logits [len(token_ids), vocab] of one run over all the tokens from an empty past."""
    run = run_step.run if hasattr(run_step, "run") else None
    step_fn = (lambda feeds: run(None, feeds)) if run is not None else run_step
    feeds = {"input_ids": np.array([list(token_ids)], np.int64),
             "attention_mask": np.ones((1, len(token_ids)), np.int64), **past}
    return np.asarray(step_fn(feeds)[0])[0]


# --- export ---------------------------------------------------------------------------

def _export(path: str, layers: int, hidden: int, heads: int, vocab: int, positions: int,
            seed: int, exporter: str, batch_dim: bool) -> None:
    model = _build(layers, hidden, heads, vocab, positions, seed)
    export_with_kv_cache(path, model, layers=layers, kv_heads=heads, head_dim=hidden // heads,
                         vocab=vocab, positions=positions, seed=seed, exporter=exporter,
                         batch_dim=batch_dim)


def export_with_kv_cache(path: str, model, *, layers: int, kv_heads: int, head_dim: int,
                         vocab: int, positions: int, seed: int, exporter: str,
                         batch_dim: bool) -> None:
    """Export a transformers causal LM whose cache is a DynamicCache of `layers`
    layers of [batch, kv_heads, past, head_dim] keys and values, with the IO of
    the module doc, then check it against torch with onnxruntime."""
    import torch

    wrapper = _KVWrapper(model).eval()
    # example sizes: every dim that is symbolic above 1, so torch.export does not specialize it
    batch, seq, past_len = (2 if batch_dim else 1), 3, 5
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, past_len + seq, dtype=torch.int64)
    past = tuple(torch.randn(batch, kv_heads, past_len, head_dim, generator=g)
                 for _ in range(2 * layers))
    ins, outs = input_names(layers), output_names(layers)
    with torch.no_grad():
        if exporter == "torchscript":
            b = {0: "batch"} if batch_dim else {}
            axes = {"input_ids": b | {1: "seq"}, "attention_mask": b | {1: "total"},
                    "logits": b | {1: "seq"}}
            axes.update({n: b | {2: "past"} for n in ins[2:]})
            axes.update({n: b | {2: "total"} for n in outs[1:]})
            torch.onnx.export(wrapper, (ids, mask, *past), path, dynamo=False,
                              input_names=ins, output_names=outs, dynamic_axes=axes,
                              opset_version=17, do_constant_folding=True)
        else:
            from torch.export import Dim

            b = {0: Dim("batch", min=1, max=1024)} if batch_dim else {}
            s = Dim("seq", min=1, max=positions)
            p = Dim("past", min=0, max=positions)
            t = Dim("total", min=1, max=positions)
            shapes = (b | {1: s}, b | {1: t}, tuple(b | {2: p} for _ in past))
            prog = torch.onnx.export(wrapper, (ids, mask, *past), dynamo=True,
                                     input_names=ins, output_names=outs, dynamic_shapes=shapes,
                                     opset_version=18, external_data=False, verbose=False)
            prog.save(path, external_data=False)
    _check_export(path, wrapper, layers, kv_heads, head_dim, vocab)


def _build(layers: int, hidden: int, heads: int, vocab: int, positions: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, vocab_size=vocab,
                        n_positions=positions, bos_token_id=0, eos_token_id=0,
                        attn_implementation="eager")
    config._attn_implementation = "eager"  # MatMul + Softmax, no fused attention op
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def _kv_wrapper_class():
    import torch

    class KVWrapper(torch.nn.Module):
        """forward(input_ids, attention_mask, *past) -> (logits, *presents), the
        cache fed in as a DynamicCache whose layers hold the past tensors."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, *past):
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
            for i, layer in enumerate(cache.layers):
                # set directly: DynamicCache(ddp_cache_data) would concat onto an
                # empty 1-d tensor, which an exporter may keep as a rank-1 Concat input
                layer.keys, layer.values = past[2 * i], past[2 * i + 1]
                layer.dtype, layer.device = past[2 * i].dtype, past[2 * i].device
                layer.is_initialized = True
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             cache=cache, use_cache=True)
            flat = [out.logits]
            for layer in out.cache.layers:
                flat += [layer.keys, layer.values]
            return tuple(flat)

    return KVWrapper


def _KVWrapper(model):
    return _kv_wrapper_class()(model)


def _check_export(path: str, wrapper, layers: int, heads: int, head_dim: int, vocab: int) -> None:
    """onnxruntime against torch with past length 0 (prefill) and 7 (decode)."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for past_len, seq in ((0, 4), (7, 1)):
        past = [rng.standard_normal((1, heads, past_len, head_dim)).astype(np.float32)
                for _ in range(2 * layers)]
        ids = rng.integers(0, vocab, (1, seq)).astype(np.int64)
        mask = np.ones((1, past_len + seq), np.int64)
        feeds = dict(zip(input_names(layers), [ids, mask, *past], strict=True))
        got = sess.run(None, feeds)
        with torch.no_grad():
            want = wrapper(*(torch.from_numpy(a) for a in (ids, mask, *past)))
        for name, g, w in zip(output_names(layers), got, want, strict=True):
            err = float(np.abs(g - w.numpy()).max()) if g.size else 0.0
            if g.shape != tuple(w.shape) or err > 1e-4:
                raise RuntimeError(f"export check failed: {name} with past length {past_len}: "
                                   f"shape {g.shape} vs {tuple(w.shape)}, max error {err}")


def _valid(path: str) -> bool:
    if not os.path.exists(path):
        return False
    try:
        import onnx

        onnx.load(path, load_external_data=False)
        return True
    except Exception:  # a broken cache entry is rebuilt
        return False


def _default_cache_dir() -> str:
    return os.environ.get("TINYC_LLM_MODEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinyc", "llm_models")


def _key(args: dict, sources: Sequence[str] = (__file__,)) -> str:
    """A hash of the arguments, the versions and the exporting code (`sources`)."""
    import onnx
    import torch
    import transformers

    text = b""
    for source in sources:
        with open(source, "rb") as f:
            text += f.read()
    versions = [torch.__version__, transformers.__version__, onnx.__version__]
    h = hashlib.sha256(text + json.dumps([args, versions], sort_keys=True).encode())
    return h.hexdigest()[:12]
