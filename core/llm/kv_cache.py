"""A decoder's inputs and outputs for generation with a KV cache: which input
takes the token ids, the mask and the positions, and which output holds the
logits; and the cache, one (past input, present output) pair per tensor.

The names come from a genai_config.json when there is one (its cache names are
"%d" templates over the layers); otherwise they are read off the model:
- the token ids: "input_ids"; the mask "attention_mask" and the positions
  "position_ids" when the model has them; the logits: "logits", else the
  first output;
- the cache: every input whose name starts with "past", paired with the
  output named alike with "present" for "past_key_values" or "past":
  past_key_values.0.key -> present.0.key (transformers, onnxruntime-genai),
  past_0 -> present_0, past_key_0 -> present_key_0 (older exports).

A cache tensor's shapes are read off the model's declared input: its length
axis is the symbolic one next to last ([batch, heads, past, head_size], also
[2, batch, heads, past, head_size]). A symbolic last dim is the head size
and one before the length the head count (onnxruntime-genai's builder names
the head size "kv_cache_dim"), both taken from the config; the other
symbolic dims are the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ModelFolderError
from .folder import IONames


@dataclass(frozen=True)
class CacheTensor:
    past: str  # the input fed the cache so far
    present: str  # the output holding it with this step's rows appended
    dims: tuple  # of `past`: ints, or names for the batch and the length
    dtype: np.dtype
    length_axis: int

    def empty(self, batch: int = 1, length: int = 0) -> np.ndarray:
        shape = [length if k == self.length_axis else d if isinstance(d, int) else batch
                 for k, d in enumerate(self.dims)]
        return np.zeros(shape, self.dtype)


@dataclass(frozen=True)
class DecoderIO:
    input_ids: str
    attention_mask: str | None
    position_ids: str | None
    logits: str
    cache: tuple[CacheTensor, ...]
    dtypes: dict  # input name -> numpy dtype, for the token, mask and position feeds

    @property
    def output_names(self) -> list[str]:
        """What a step asks for: the logits, then the presents in cache order."""
        return [self.logits, *(c.present for c in self.cache)]

    def empty_cache(self, batch: int = 1, length: int = 0) -> dict[str, np.ndarray]:
        return {c.past: c.empty(batch, length) for c in self.cache}

    def feeds(self, ids: Sequence[int], mask: Sequence[int], cache: dict) -> dict:
        """One step's feeds (batch 1): the new tokens, the mask over the past and
        them, their positions (counting the unmasked tokens before them)."""
        feeds = {self.input_ids: np.array([list(ids)], self.dtypes[self.input_ids]), **cache}
        if self.attention_mask:
            feeds[self.attention_mask] = np.array([list(mask)], self.dtypes[self.attention_mask])
        if self.position_ids:
            first = int(np.sum(mask[:len(mask) - len(ids)]))
            feeds[self.position_ids] = np.arange(first, first + len(ids),
                                                 dtype=self.dtypes[self.position_ids])[None]
        return feeds


def decoder_io(inputs: Sequence, outputs: Sequence, names: IONames | None = None,
               layers: int | None = None, head_size: int | None = None,
               kv_heads: int | None = None) -> DecoderIO:
    """The decoder's IO from its declared inputs and outputs (objects with
    .name, .shape and a numpy .dtype name, such as tinyc's TensorInfo);
    `head_size` and `kv_heads` fill cache dims the model leaves symbolic."""
    names = names or IONames()
    ins = {i.name: i for i in inputs}
    outs = [o.name for o in outputs]

    def pick_input(given: str | None, default: str, required: bool) -> str | None:
        name = given or default
        if name in ins:
            return name
        if required or given:
            raise ModelFolderError(f"the model has no input '{name}'; its inputs are "
                                   f"{sorted(ins)}")
        return None

    ids = pick_input(names.input_ids, "input_ids", required=True)
    mask = pick_input(names.attention_mask, "attention_mask", required=False)
    positions = pick_input(names.position_ids, "position_ids", required=False)
    logits = names.logits or ("logits" if "logits" in outs else outs[0])
    if logits not in outs:
        raise ModelFolderError(f"the model has no output '{logits}'; its outputs are {outs}")
    pairs = (_configured_pairs(names, layers) if names.past_key
             else _inferred_pairs([i for i in ins if i.startswith("past")], outs))
    cache = tuple(_cache_tensor(ins, outs, past, present, head_size, kv_heads)
                  for past, present in pairs)
    if layers is not None and names.past_key is None and len(cache) not in (layers, 2 * layers):
        raise ModelFolderError(f"the config says {layers} layers; the model has "
                               f"{len(cache)} cache inputs {[c.past for c in cache]}")
    fed = {ids, mask, positions, *(c.past for c in cache)}
    unfed = sorted(set(ins) - fed)
    if unfed:
        raise ModelFolderError(f"the model has inputs generation does not know how to feed: "
                               f"{unfed} (it feeds {ids}, {mask or 'no mask'}, "
                               f"{positions or 'no positions'} and the past_* cache)")
    dtypes = {n: np.dtype(ins[n].dtype) for n in (ids, mask, positions) if n}
    return DecoderIO(ids, mask, positions, logits, cache, dtypes)


def _configured_pairs(names: IONames, layers: int | None) -> list[tuple[str, str]]:
    if layers is None:
        raise ModelFolderError("the config names the cache inputs but not "
                               "model.decoder.num_hidden_layers")
    pairs = []
    for layer in range(layers):
        for past, present in ((names.past_key, names.present_key),
                              (names.past_value, names.present_value)):
            if past is None or present is None:
                raise ModelFolderError("the config names past_key_names but not all of "
                                       "past_value_names, present_key_names, "
                                       "present_value_names")
            pairs.append((_layer_name(past, layer), _layer_name(present, layer)))
    return pairs


def _layer_name(template: str, layer: int) -> str:
    try:
        return template % layer
    except (TypeError, ValueError):
        raise ModelFolderError(f"cache name template {template!r} does not take a layer "
                               f"number (write it with %d)") from None


def _inferred_pairs(pasts: list[str], outs: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for past in pasts:
        candidates = [past.replace("past_key_values", "present", 1),
                      past.replace("past", "present", 1)]
        present = next((c for c in candidates if c in outs), None)
        if present is None:
            raise ModelFolderError(f"the model's cache input '{past}' has no matching output "
                                   f"(looked for {candidates}); its outputs are {outs}")
        pairs.append((past, present))
    return pairs


def _cache_tensor(ins: dict, outs: list[str], past: str, present: str,
                  head_size: int | None, kv_heads: int | None) -> CacheTensor:
    if past not in ins:
        raise ModelFolderError(f"the model has no cache input '{past}'; its inputs are "
                               f"{sorted(ins)}")
    if present not in outs:
        raise ModelFolderError(f"the model has no cache output '{present}'; its outputs are "
                               f"{outs}")
    dims = list(ins[past].shape)
    symbolic = [k for k, d in enumerate(dims) if not isinstance(d, int)]
    if len(dims) < 4 or not symbolic:
        raise ModelFolderError(f"cache input '{past}' has dims {dims}: expected "
                               f"[batch, heads, past_length, head_size] with a symbolic length")
    axis = len(dims) - 2 if (len(dims) - 2) in symbolic else symbolic[-1]
    for k, size, what in ((len(dims) - 1, head_size, "head_size"),
                          (axis - 1, kv_heads, "num_key_value_heads")):
        if k != axis and not isinstance(dims[k], int):
            if size is None:
                raise ModelFolderError(f"cache input '{past}' has the symbolic dim {dims[k]!r} "
                                       f"at axis {k}; the config gives no {what} for it")
            dims[k] = size
    return CacheTensor(past, present, tuple(dims), np.dtype(ins[past].dtype), axis)
