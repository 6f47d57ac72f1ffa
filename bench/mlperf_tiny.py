"""Issue 17's table: the MLPerf Tiny models on each Cortex-M core under qemu:
flash, RAM, instructions per inference, and the largest gap to onnxruntime in
quantization steps. Prints Markdown (docs/embedded.md holds a copy).

    python bench/mlperf_tiny.py [--models ad,ic] [--cores cortex-m4,cortex-m55]
"""

from __future__ import annotations

import argparse

import numpy as np

import tinyc
from tinyc.testing import mlperf_tiny as mt
from tinyc.testing.reference import reference_outputs
from tinyc_backend_arm.icount import instructions_per_inference

CORES = ("cortex-m4", "cortex-m7", "cortex-m55")


def row(name: str, target: str) -> str:
    model = mt.quantized(name)
    feeds = mt.input_feeds(model)
    art = tinyc.compile(model, target=target)
    got = tinyc.InferenceSession(model, target=target).run(None, feeds)[0]
    want = reference_outputs(model, feeds, [model.graph.output[0].name])[0][0]
    steps = float(np.abs(got - want).max() / mt.output_step(model))
    count = instructions_per_inference(art, feeds)
    flash, ram = art.meta["memory"]["flash"], art.meta["memory"]["ram"]
    kib = lambda n: f"{n / 1024:.1f}"  # noqa: E731
    return (f"| {mt.TITLES[name]} | {target} | {kib(flash['total'])} | {kib(flash['code'])} | "
            f"{kib(flash['weights'])} | {kib(ram['total'])} | {kib(ram['arena'])} | "
            f"{kib(ram['io'])} | {count / 1e6:.2f} M | {steps:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(mt.MODELS))
    p.add_argument("--cores", default=",".join(CORES))
    args = p.parse_args()
    print("| model | core | flash KiB | code | weights | RAM KiB | arena | I/O | "
          "instructions | steps off |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        for target in args.cores.split(","):
            print(row(name, target), flush=True)


if __name__ == "__main__":
    main()
