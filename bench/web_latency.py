"""tinyc's wasm module against onnxruntime-web, in the same headless Chromium.

    python bench/web_latency.py [--models squeezenet,mobilenet_v2] [--runs 20]
                                [--threads 1,2]

Both engines run the same ONNX model on the same input in one page
(bench/web/bench.mjs): tinyc through the artifact's model.js (wasm32-simd,
single-threaded), onnxruntime-web through its wasm execution provider
(bench/web/package.json pins the version; scripts/setup installs it with npm).
One browser launch per thread count: onnxruntime-web takes its thread count
once per page, and more than one thread needs a crossOriginIsolated page
(served with COOP/COEP headers) for SharedArrayBuffer. Prints the median ms per
run, the interquartile range, and tinyc / onnxruntime-web (below 1.0: tinyc is
faster), with the load average. Numbers for notes, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

import numpy as np
import onnx

import tinyc
from tinyc.testing.browser import chromium_missing_reason, chromium_version, run_page, serve

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_DIST = os.path.join(HERE, "web", "node_modules", "onnxruntime-web", "dist")
TARGET = "wasm32-simd"
MODELS = ("squeezenet", "mobilenet_v2")


def load_model(name: str) -> onnx.ModelProto:
    from tinyc.testing.models import light_model, mobilenet_v2

    return mobilenet_v2() if name == "mobilenet_v2" else light_model(name)


def prepare(root: str, names: list[str]) -> None:
    """root/<name>/ (tinyc's package and input.bin), root/<name>.onnx, root/ort/
    (onnxruntime-web's files) and the page."""
    os.symlink(ORT_DIST, os.path.join(root, "ort"))
    for page in ("bench.html", "bench.mjs"):
        shutil.copy(os.path.join(HERE, "web", page), root)
    for name in names:
        model = load_model(name)
        folder = tinyc.compile(model, target=TARGET).save(os.path.join(root, name))
        onnx.save(model, os.path.join(root, f"{name}.onnx"))
        inits = {t.name for t in model.graph.initializer}
        (graph_input,) = [i for i in model.graph.input if i.name not in inits]
        shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        x = np.random.default_rng(0).standard_normal(shape).astype("<f4")
        x.tofile(os.path.join(folder, "input.bin"))


def measure(root: str, names: list[str], threads: int, runs: int) -> tuple[dict, str]:
    query = f"threads={threads}&runs={runs}&models={','.join(names)}"
    with serve(root, isolated=threads > 1) as (url, reports):
        got = run_page(f"{url}/bench.html?{query}", reports, timeout=600)
    return {name: json.loads(got[name]) for name in names}, got["done"].decode()


def summary(ms: list[float]) -> str:
    q1, med, q3 = np.percentile(ms, [25, 50, 75])
    return f"{med:8.2f} ±{(q3 - q1) / 2:5.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", default="1,2", help="onnxruntime-web's thread counts")
    args = parser.parse_args()
    missing = chromium_missing_reason() or (
        None if os.path.isdir(ORT_DIST) else
        "onnxruntime-web is not installed (npm ci --prefix bench/web; scripts/setup does it)")
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    names = args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="tinyc-web-bench-") as root:
        prepare(root, names)
        load = os.getloadavg()[0]
        results = [measure(root, names, int(t), args.runs) for t in args.threads.split(",")]
    print(f"{chromium_version()}, {results[0][1].split('; ')[-1]}; load average {load:.2f} "
          f"at the start; {args.runs} runs each, median ms ± half the interquartile range")
    print(f"{'model':14} {'threads':>7} {'isolated':>8} {'tinyc':>15} {'onnxruntime-web':>15} "
          f"{'ratio':>6} {'max diff':>9}")
    for timings, _ in results:
        for name in names:
            r = timings[name]
            ratio = statistics.median(r["tinyc"]) / statistics.median(r["ort"])
            print(f"{name:14} {r['threads']:>7} {str(r['isolated']):>8} {summary(r['tinyc'])} "
                  f"{summary(r['ort'])} {ratio:6.2f} {r['error']:9.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
