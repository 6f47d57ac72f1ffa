"""Issue 13's acceptance figures: tune models with `tinyc tune`, then time the
untuned build, the tuned build and onnxruntime in the same run.

    python bench/tune_report.py [--models mobilenet_v2,resnet50,encoder] [--target x86]
                                [--budget 15m] [--log tune.jsonl] [--runs 20] [--skip-tuning]

Each model is tuned into --log (its own file, not the cache's default database)
with `tinyc tune MODEL --target T --time-budget B --log LOG`; then the untuned
artifact (no tuning applied at all), the tuned one (that log only) and
onnxruntime are timed: at 1 thread interleaved sample by sample, median of the
calling thread's CPU time; at all threads each alone, back to back, median wall
time (as bench/bench_models.py does). Prints tuned/untuned and tuned/onnxruntime
at both thread counts. Numbers for notes, not a test: take them at a load
average under 1.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time

import onnx
from bench_models import Config, _interleave, load_model, ort_session, random_feeds

import tinyc
from tinyc.compiler import CompileOptions


def tune(path: str, target: str, budget: str, log: str) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "tinyc", "tune", path, "--target", target,
           "--time-budget", budget, "--log", log, "--no-end-to-end"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tinyc tune failed: {done.stderr.strip()[-400:]}")
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    return time.perf_counter() - t0


def native(model, target: str, log: str | None, folder: str):
    options = CompileOptions(tuning_log=log, default_tuning=False)
    artifact = tinyc.compile(model, target=target, options=options)
    tuned = sum(1 for r in artifact.report if r.get("tuned"))
    return artifact.load(os.path.join(folder, "tuned" if log else "untuned")), tuned


def measure(name: str, target: str, log: str, runs: int, threads: int) -> dict:
    model = load_model(name, False)
    feeds = random_feeds(model)
    with tempfile.TemporaryDirectory() as d:
        untuned, _ = native(model, target, None, d)
        tuned, layers = native(model, target, log, d)

    def on(art, n):
        def run():
            art.set_num_threads(n)
            return art.run(None, feeds)
        return run

    ort1 = ort_session(model, 1)
    one = [Config("untuned", on(untuned, 1)), Config("tuned", on(tuned, 1)),
           Config("ort", lambda: ort1.run(None, feeds))]
    _interleave(one, runs)
    many = [Config("untuned", on(untuned, threads)), Config("tuned", on(tuned, threads))]
    for c in many:
        _interleave([c], runs)
    ortn = ort_session(model, threads)
    many.append(Config("ort", functools.partial(ortn.run, None, feeds)))
    _interleave(many[-1:], runs)
    many[-1].run = None  # the session goes, and its spinning threads with it
    del ortn
    cpu = {c.label: statistics.median(c.cpu) for c in one}
    wall = {c.label: statistics.median(c.wall) for c in many}
    return {"model": name, "layers": layers, "1T": cpu, "NT": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2,resnet50,encoder")
    p.add_argument("--target", default="x86")
    p.add_argument("--budget", default="15m", help="tinyc tune --time-budget per model")
    p.add_argument("--log", default="tune_report.jsonl")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-tuning", action="store_true", help="measure with --log as it is")
    args = p.parse_args()
    print(f"target {args.target}; load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            if not args.skip_tuning:
                path = os.path.join(d, f"{name}.onnx")
                onnx.save(load_model(name, False), path)
                print(f"{name}: tuned for {tune(path, args.target, args.budget, args.log):.0f} s")
            rows.append(measure(name, args.target, args.log, args.runs, args.threads))
            sys.stdout.flush()
    print(f"\n{'model':14} {'tuned layers':>12}  {'1T tuned/untuned':>16} {'1T tuned/ort':>12}"
          f"  {f'{args.threads}T tuned/untuned':>16} {f'{args.threads}T tuned/ort':>12}")
    for r in rows:
        one, many = r["1T"], r["NT"]
        print(f"{r['model']:14} {r['layers']:>12}  {one['tuned'] / one['untuned']:16.3f} "
              f"{one['tuned'] / one['ort']:12.3f}  {many['tuned'] / many['untuned']:16.3f} "
              f"{many['tuned'] / many['ort']:12.3f}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
