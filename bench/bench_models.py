"""tinyc against onnxruntime on real CNNs: latency ratios measured in one run.

    python bench/bench_models.py [--models resnet50,squeezenet] [--runs 20]

Prints, per model, the median latency of tinyc and of onnxruntime (single
thread, and onnxruntime with all threads), the ratio tinyc / onnxruntime
(below 1.0 means tinyc is faster) and tinyc's GFLOP/s. Weights are seeded
random (see tinyc.testing.models). Not a test: numbers, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import tinyc
from tinyc.testing.models import light_model, mobilenet_v2

PEAK_GFLOPS_PER_CORE = 240.0  # AVX-512, 2 FMA pipes, this machine's roofline


def _model(name: str):
    return mobilenet_v2() if name == "mobilenet_v2" else light_model(name)


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _ort_session(model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _conv_gemm_flops(model) -> float:
    """2*MACs of Conv and Gemm/MatMul nodes, from ONNX shape inference."""
    import onnx

    m = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
    shapes.update({t.name: list(t.dims) for t in m.graph.initializer})
    flops = 0.0
    for n in m.graph.node:
        if n.op_type == "Conv" and n.output[0] in shapes and n.input[1] in shapes:
            w = shapes[n.input[1]]
            flops += 2 * np.prod(shapes[n.output[0]]) * np.prod(w[1:])
        elif n.op_type in ("Gemm", "MatMul") and n.input[1] in shapes:
            flops += 2 * np.prod(shapes[n.input[1]]) * max(1, np.prod(shapes[n.input[0]][:-1]))
    return flops


def bench(name: str, runs: int) -> dict:
    model = _model(name)
    t0 = time.perf_counter()
    sess = tinyc.InferenceSession(model, target="x86")
    compile_s = time.perf_counter() - t0
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)
    feeds = {inp.name: x}
    ort1 = _ort_session(model, 1)
    ortn = _ort_session(model, os.cpu_count() or 1)
    r = {
        "model": name,
        "compile_s": compile_s,
        "tinyc_ms": _median_ms(lambda: sess.run(None, feeds), runs),
        "ort1_ms": _median_ms(lambda: ort1.run(None, feeds), runs),
        "ortn_ms": _median_ms(lambda: ortn.run(None, feeds), runs),
        "gflop": _conv_gemm_flops(model) / 1e9,
    }
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,squeezenet,mobilenet_v2")
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    import onnxruntime as ort

    print(f"tinyc {tinyc.__version__} vs onnxruntime {ort.__version__}; "
          f"{os.cpu_count()} cores; tinyc runs single-threaded")
    print(f"{'model':<14} {'compile':>8} {'tinyc':>9} {'ort 1T':>9} {'ratio 1T':>9} "
          f"{'ort allT':>9} {'ratio allT':>10} {'GFLOP/s':>8} {'% peak':>7}")
    for name in args.models.split(","):
        r = bench(name.strip(), args.runs)
        gflops = r["gflop"] / (r["tinyc_ms"] / 1e3)
        print(f"{r['model']:<14} {r['compile_s']:>7.2f}s {r['tinyc_ms']:>7.2f}ms "
              f"{r['ort1_ms']:>7.2f}ms {r['tinyc_ms'] / r['ort1_ms']:>8.2f}x "
              f"{r['ortn_ms']:>7.2f}ms {r['tinyc_ms'] / r['ortn_ms']:>9.2f}x "
              f"{gflops:>8.1f} {100 * gflops / PEAK_GFLOPS_PER_CORE:>6.1f}%")


if __name__ == "__main__":
    main()
