"""tinyc against onnxruntime, in one run: 1 thread and all threads, fp32 and int8.

    python bench/bench_models.py [--models resnet50,mobilenet_v2,...] [--runs 30]
                                 [--int8 resnet50,mobilenet_v2,mlp] [--threads N]

Two tables, ratios tinyc / onnxruntime (below 1.0: tinyc is faster) and
tinyc's GFLOP/s (GOP/s for int8) against this machine's peak, 240 GFLOP/s fp32
per core (AVX-512, two FMA pipes), four times that for int8 (VNNI: four int8
multiply-adds per fp32 lane):
- single thread, in CPU time of the calling thread (median, ± half the
  interquartile range): the cost of a run whatever else the machine does;
- latency, wall clock, on 1 thread and on all threads (10th percentile and
  median), and tinyc's scaling from 1 to all threads.

The machine is shared: samples of tinyc 1T and onnxruntime 1T are interleaved
(in rotating order), so load from other processes hits them alike. All-threads
runs are measured after, each engine alone with runs back to back, so both keep
their worker threads awake between runs (onnxruntime's keep spinning for more
than 50 ms after a run and would take a core from whatever ran next; tinyc's
sleep 0.3 ms after their last job, and each interleaved run would wake them).
One tinyc artifact serves both thread counts (NativeModel.set_num_threads);
onnxruntime needs one session per count. Models have seeded
random weights (tinyc.testing.models, seq_models, quant_models). Numbers for
notes, not a test: no pass/fail.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
from timing import Config, interleave, median_spread, ort_session

import tinyc

PEAK_GFLOPS_PER_CORE = 240.0  # fp32: AVX-512, two FMA pipes; int8 (VNNI) is 4x
FP32 = ("resnet50", "squeezenet", "mobilenet_v2", "encoder", "mlp")
INT8 = ("resnet50", "mobilenet_v2", "mlp")


def load_model(name: str, int8: bool):
    """The ONNX model `name` (see FP32 / INT8), int8 as QDQ from onnxruntime's quantizer."""
    if int8:
        from tinyc.testing.quant_models import quantized_model

        return quantized_model(name, "qdq")
    if name == "encoder":
        from tinyc.testing.seq_models import transformer_encoder

        return transformer_encoder()
    if name == "mlp":
        from tinyc.testing.quant_models import float_model

        return float_model("mlp")
    from tinyc.testing.models import light_model, mobilenet_v2

    return mobilenet_v2() if name == "mobilenet_v2" else light_model(name)


def random_feeds(model) -> dict[str, np.ndarray]:
    import onnx

    rng = np.random.default_rng(0)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        if np.issubdtype(dtype, np.integer):  # token ids: below every vocabulary size
            feeds[vi.name] = rng.integers(0, 100, shape).astype(dtype)
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def model_flops(model) -> float:
    """2 x multiply-adds of the convolutions and matrix products (float or quantized)."""
    import onnx

    m = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
    shapes.update({t.name: list(t.dims) for t in m.graph.initializer})
    flops = 0.0
    for n in m.graph.node:
        out = shapes.get(n.output[0])
        if not out:
            continue
        if n.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w = shapes.get(n.input[3 if n.op_type == "QLinearConv" else 1])
            flops += 2 * np.prod(out) * np.prod(w[1:]) if w else 0
        elif n.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shapes.get(n.input[0])
            k = a[0] if n.op_type == "Gemm" and _attr(n, "transA") else a[-1] if a else 0
            flops += 2 * np.prod(out) * k
    return flops


def _attr(node, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)


def bench(name: str, int8: bool, runs: int, threads: int, target: str = "x86") -> dict:
    model = load_model(name, int8)
    feeds = random_feeds(model)
    t0 = time.perf_counter()
    artifact = tinyc.compile(model, target=target)
    compile_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        native = artifact.load(d)  # the library is loaded: the folder may go
    ort1 = ort_session(model, 1)

    def tinyc_on(n: int) -> Callable[[], object]:
        def run():
            native.set_num_threads(n)
            return native.run(None, feeds)
        return run

    configs = [Config("tinyc1", tinyc_on(1)), Config("ort1", lambda: ort1.run(None, feeds))]
    interleave(configs, runs)
    # All threads: each engine alone, runs back to back, so that both find their
    # workers awake (tinyc's spin 0.3 ms for the next job, then sleep; interleaved
    # with 4 ms samples of the others, every run would wake them). onnxruntime's
    # workers spin for a long while after a run (>50 ms here), taking a core from
    # whatever runs next: its session is measured last and closed before the next model.
    configs.append(Config("tinycN", tinyc_on(threads)))
    interleave(configs[-1:], runs)
    ortn = ort_session(model, threads)
    configs.append(Config("ortN", functools.partial(ortn.run, None, feeds)))
    interleave(configs[-1:], runs)
    configs[-1].run = None
    del ortn  # the session goes, and its threads with it
    out = {"model": f"{name}{' int8' if int8 else ''}", "compile_s": compile_s,
           "gflop": model_flops(model) / 1e9, "int8": int8}
    for c in configs:
        out[c.label] = c
    return out


def p10(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[0] * 1e3


def _ms(samples: list[float]) -> str:
    ms, spread = median_spread(samples)
    return f"{ms:8.3f} ±{spread:2.0f}%"


def print_single_thread(results: list[dict]) -> None:
    """1T on the calling thread's CPU time: what the run costs, whatever else the
    machine does (onnxruntime with one intra-op thread also runs on the caller)."""
    print("\nSingle thread, CPU time of the calling thread (median ± half IQR):")
    print(f"{'model':<18}{'tinyc':>14} {'onnxruntime':>14} {'tinyc/ort':>9}  {'GFLOP/s':>8} "
          f"{'of peak':>7}  {'compile':>7}")
    for r in results:
        t, o = r["tinyc1"].cpu, r["ort1"].cpu
        ratio = statistics.median(t) / statistics.median(o)
        g = r["gflop"] / statistics.median(t)
        peak = PEAK_GFLOPS_PER_CORE * (4 if r["int8"] else 1)
        print(f"{r['model']:<18}{_ms(t)} {_ms(o)} {ratio:8.2f}x  {g:8.1f} {100 * g / peak:6.1f}%"
              f"  {r['compile_s']:6.1f}s")


def print_latency(results: list[dict], threads: int) -> None:
    """Wall-clock latency, 1 thread and all threads: the 10th percentile, which
    other processes on the machine disturb least, and the median."""
    print(f"\nLatency, wall clock, 1 and {threads} threads (10th percentile / median, ms):")
    print(f"{'model':<18}{'tinyc 1T':>16} {'ort 1T':>16} {'ratio':>6}  {'tinyc all-T':>16} "
          f"{'ort all-T':>16} {'ratio':>6}  {'scaling':>7}  {'GFLOP/s':>7} {'of peak':>7}")
    for r in results:
        v = {k: (p10(r[k].wall), statistics.median(r[k].wall) * 1e3)
             for k in ("tinyc1", "ort1", "tinycN", "ortN")}
        cells = {k: f"{a:7.3f}/{b:8.3f}" for k, (a, b) in v.items()}
        g = r["gflop"] / v["tinycN"][0] * 1e3
        peak = PEAK_GFLOPS_PER_CORE * (4 if r["int8"] else 1) * threads
        print(f"{r['model']:<18}{cells['tinyc1']} {cells['ort1']} "
              f"{v['tinyc1'][0] / v['ort1'][0]:5.2f}x  {cells['tinycN']} {cells['ortN']} "
              f"{v['tinycN'][0] / v['ortN'][0]:5.2f}x  {v['tinyc1'][0] / v['tinycN'][0]:6.2f}x  "
              f"{g:7.1f} {100 * g / peak:6.1f}%")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(FP32), help="fp32 models")
    p.add_argument("--int8", default=",".join(INT8), help="int8 (QDQ) models; '' for none")
    p.add_argument("--runs", type=int, default=30, help="samples per configuration")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="'all threads'")
    p.add_argument("--target", default="x86", help="tinyc's target (a name or a spec .yaml) "
                   "that runs on this machine, e.g. x86-avx2; the peak stays this host's")
    args = p.parse_args()
    import onnxruntime as ort

    print(f"tinyc {tinyc.__version__} vs onnxruntime {ort.__version__}; {os.cpu_count()} cores, "
          f"all-T = {args.threads} threads; {args.runs} interleaved samples per configuration; "
          f"peak {PEAK_GFLOPS_PER_CORE:.0f} GFLOP/s per core fp32, 4x for int8 (GOP/s)")
    todo = [(n, False) for n in args.models.split(",") if n]
    todo += [(n, True) for n in args.int8.split(",") if n]
    results = []
    for name, int8 in todo:
        try:
            results.append(bench(name.strip(), int8, args.runs, args.threads, args.target))
        except Exception as e:  # one model that does not compile must not hide the others
            print(f"{name + (' int8' if int8 else '')}: failed: {type(e).__name__}: "
                  f"{str(e).splitlines()[0][:120]}")
        sys.stdout.flush()
    print_single_thread(results)
    print_latency(results, args.threads)


if __name__ == "__main__":
    main()
