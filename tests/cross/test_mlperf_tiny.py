"""Issue 17: MLPerf Tiny's four reference models (int8, onnxruntime's quantizer)
on Cortex-M under qemu-system-arm, matching onnxruntime within one quantization
step, with weights in flash and activations only in the arena.

The default run compiles and runs the smallest (the FC autoencoder) on one
core, and checks the memory acceptance (compiles only); `pytest -m mcu_full`
runs all four models on all three cores and counts their instructions.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinyc
from tinyc.link.elf import Elf
from tinyc.testing import mlperf_tiny as mt
from tinyc.testing.reference import reference_outputs

from .support import require

CORES = ("cortex-m4", "cortex-m7", "cortex-m55")
RUNTIME_TEXT_LIMIT = 12 * 1024  # issue 17, item 4


def check_runs_like_onnxruntime(name: str, target: str) -> tinyc.Artifact:
    require(target)
    model = mt.quantized(name)
    feeds = mt.input_feeds(model)
    art = tinyc.compile(model, target=target)
    got = tinyc.InferenceSession(model, target=target).run(None, feeds)[0]
    want = reference_outputs(model, feeds, [model.graph.output[0].name])[0][0]
    steps = np.abs(got - want) / mt.output_step(model)
    assert steps.max() <= 1 + 1e-5, f"{name} on {target}: {steps.max():.2f} steps apart"
    check_memory(art)
    return art


def check_memory(art) -> None:
    """Weights in the flash's .rodata, RAM within the spec, runtime small."""
    memory, weights = art.meta["memory"], len(art.weights)
    assert memory["flash"]["weights"] == weights
    rodata = sum(s.size for s in Elf(art.files["model.elf"]).sections
                 if s.loaded and not s.code and not s.writable)
    assert rodata >= weights
    ram = memory["ram"]
    assert ram["total"] - ram["io"] - ram["stack"] - ram["arena"] < 1024  # no weights in RAM
    assert ram["total"] <= ram["limit"] and memory["flash"]["total"] <= memory["flash"]["limit"]
    assert 0 < art.meta["sizes"]["runtime_text"] <= RUNTIME_TEXT_LIMIT, art.meta["sizes"]


def test_fc_autoencoder_runs_on_cortex_m4_like_onnxruntime():
    check_runs_like_onnxruntime("ad", "cortex-m4")


def test_mlp_arena_holds_two_activations_and_scratch_on_cortex_m55():
    """64x256 -> 512 -> 256 -> 10: the arena is the two largest activations
    that are live together (64x512 and 64x256 int8) and the GEMM's scratch:
    Helium's vmlava kernel packs A one panel of 8 rows at a time (8 x K = 512
    bytes, and their row sums, 64-byte aligned); the bias Adds write in place."""
    art = check_runs_like_onnxruntime("mlp", "cortex-m55")
    scratch = 8 * 512 + 64
    assert art.meta["arena_bytes"] <= 64 * 512 + 64 * 256 + scratch, art.meta["arena_bytes"]


@pytest.mark.parametrize("name", ["ic", "mlp"])
def test_resnet8_and_the_mlp_fit_cortex_m4(name):
    require("cortex-m4")
    art = tinyc.compile(mt.quantized(name), target="cortex-m4")
    check_memory(art)
    assert art.meta["memory"]["ram"]["limit"] == 256 * 1024


@pytest.mark.mcu_full
@pytest.mark.parametrize("target", CORES)
@pytest.mark.parametrize("name", sorted(mt.MODELS))
def test_mlperf_tiny_model_on_every_core(name, target):
    from tinyc_backend_arm.icount import instructions_per_inference

    art = check_runs_like_onnxruntime(name, target)
    count = instructions_per_inference(art, mt.input_feeds(mt.quantized(name)))
    assert count > 0
    memory = art.meta["memory"]
    print(f"\n{name} {target}: flash {memory['flash']['total']} RAM {memory['ram']['total']} "
          f"instructions {count}")
