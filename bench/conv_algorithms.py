"""3x3 stride-1 conv layers: im2col against Winograd F(2x2) and F(4x4), and
onnxruntime, each layer a Conv + bias + Relu model.

    python bench/conv_algorithms.py [--threads 1] [--runs 15] [--target x86]
                                    [--layers 64x56,128x28,256x14,512x7]

A layer "CxS" is C -> C channels on an S x S image, padded to keep its size.
Each algorithm is forced through a schedule source (the knob `algorithm` of
the lowering's tunable choice, core/lower/conv_winograd.py); the
configurations run interleaved (bench/timing.py). 1 thread: median CPU time;
more: the 10th percentile of wall time, settled. Ratios are against im2col.
Prints the load average: figures taken above ~1.5 are not worth keeping.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from timing import Config, interleave, low, ort_session

import tinyc
from tinyc.compiler import CompileOptions
from tinyc.lower.conv_winograd import ALGORITHM_KERNEL, ALGORITHMS
from tinyc.schedule.source import Decision


class ForcedAlgorithm:
    """A schedule source answering `algorithm` for every 3x3 conv, defaults elsewhere."""

    def __init__(self, algorithm: str):
        self.algorithm = algorithm
        self.fingerprint = f"conv-algorithm={algorithm}"

    def decide(self, tunable) -> Decision:
        if tunable.workload.kernel == ALGORITHM_KERNEL:
            return Decision({"algorithm": self.algorithm})
        return Decision(tunable.space.defaults())


def conv_layer(channels: int, size: int, rng: np.random.Generator):
    w = (rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels))
    b = rng.standard_normal(channels)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "conv3x3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w.astype(np.float32), "w"),
         numpy_helper.from_array(b.astype(np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def measure(channels: int, size: int, threads: int, runs: int,
            target: str = "x86") -> dict[str, float]:
    rng = np.random.default_rng(0)
    model = conv_layer(channels, size, rng)
    feeds = {"x": rng.standard_normal((1, channels, size, size)).astype(np.float32)}
    configs = []
    for algorithm in ALGORITHMS:
        options = CompileOptions(threads=threads, schedule=ForcedAlgorithm(algorithm))
        session = tinyc.InferenceSession(model.SerializeToString(), target=target,
                                         options=options)
        configs.append(Config(algorithm, lambda s=session: s.run(None, feeds)))
    ref = ort_session(model, threads)
    configs.append(Config("onnxruntime", lambda: ref.run(None, feeds)))
    interleave(configs, runs, settle=threads > 1)
    return {c.label: (float(np.median(c.cpu)) if threads == 1 else low(c.wall)) * 1e3
            for c in configs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--layers", default="64x56,128x28,256x14,512x7,32x112,64x14")
    p.add_argument("--target", default="x86", help="e.g. x86-avx2 (onnxruntime picks its "
                                                   "own instruction set)")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.target}, {args.threads} thread(s), "
          f"ms (ratio to im2col)")
    for layer in args.layers.split(","):
        channels, size = (int(v) for v in layer.split("x"))
        t = measure(channels, size, args.threads, args.runs, args.target)
        cells = "  ".join(f"{k} {v:.3f} ({v / t['im2col']:.2f})" for k, v in t.items())
        print(f"{channels:4d} ch {size:3d}x{size:<3d} {cells}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
