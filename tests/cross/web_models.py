"""The models the web package is checked with in node and Chromium, compiled
once per session: squeezenet (its logits exposed) and BERT-tiny (three int64
inputs, two float outputs). Each comes with its feeds written beside model.js
(in_<k>.bin, little-endian), the same module's outputs from wasmtime (JS must
match them bit for bit) and onnxruntime's (within 1e-5 of the output range)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx

import tinyc
from tinyc.testing.compare import range_error
from tinyc.testing.reference import reference_outputs

TARGET = "wasm32-simd"
TOLERANCE = 1e-5  # of the output range, the bar


@dataclass
class WebModel:
    name: str
    model: onnx.ModelProto
    folder: str
    feeds: dict[str, np.ndarray]
    feed_files: dict[str, list[str]]  # input name -> [dtype, file in folder]
    wasmtime: dict[str, np.ndarray]
    onnxruntime: dict[str, np.ndarray]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.model.graph.output]


def web_model_protos() -> dict[str, tuple[onnx.ModelProto, dict[str, np.ndarray]]]:
    from tinyc.testing.seq_models import bert_feeds, bert_tiny

    from .support import feeds_for, squeezenet

    bert = bert_tiny()
    return {"squeezenet": (squeezenet(), feeds_for(squeezenet())),
            "bert_tiny": (bert, bert_feeds(bert))}


def build(name: str, model: onnx.ModelProto, feeds: dict[str, np.ndarray],
          folder: str) -> WebModel:
    loaded = tinyc.compile(model, target=TARGET).load(folder)  # saves, then loads
    names = [o.name for o in model.graph.output]
    return WebModel(name, model, folder, feeds, write_feeds(folder, feeds),
                    dict(zip(names, loaded.run(names, feeds), strict=True)),
                    dict(zip(names, reference_outputs(model, feeds, names)[0], strict=True)))


def write_feeds(folder: str, feeds: dict[str, np.ndarray]) -> dict[str, list[str]]:
    files = {}
    for k, (name, a) in enumerate(feeds.items()):
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tofile(
            os.path.join(folder, f"in_{k}.bin"))
        files[name] = [str(a.dtype), f"in_{k}.bin"]
    return files


def check_outputs(where: str, got: dict[str, np.ndarray], web: WebModel) -> None:
    """JS outputs: the model's names in order, bit-equal to wasmtime's, and
    within TOLERANCE of onnxruntime's."""
    assert list(got) == web.output_names, where
    for name in web.output_names:
        want, js = web.onnxruntime[name], got[name]
        assert js.dtype == want.dtype and js.shape == want.shape, f"{where} {name}"
        np.testing.assert_array_equal(js, web.wasmtime[name],
                                      err_msg=f"{where} {name}: vs wasmtime")
        if want.dtype.kind == "f":
            err = range_error(js, want)
            assert err <= TOLERANCE, f"{where} {name}: error {err:.3e} of the output range"
        else:
            np.testing.assert_array_equal(js, want, err_msg=f"{where} {name}")
