"""Issue 13's acceptance figures: tune models with `tinyc tune`, then time the
untuned build, the tuned build and onnxruntime in the same run.

    python bench/tune_report.py [--models mobilenet_v2,resnet50,encoder] [--target x86]
                                [--budget 15m] [--log tune.jsonl] [--runs 30]
                                [--runs-all 200] [--threads N] [--skip-tuning]
                                [--aa] [--repeat K]

A tuning record applies only to code built for the thread count it was tuned
at (the workload's key holds the target's threads, and the knob space its
thread split), so each model is tuned twice into --log (its own file, not the
cache's default database): `tinyc tune MODEL --target T --time-budget B
--threads 1 --log LOG`, then the same with --threads N (N: every core); each
for --budget. Each artifact is built for the thread count it is timed at:
- 1 thread: untuned, tuned and onnxruntime interleaved sample by sample,
  median of the calling thread's CPU time (what a run costs, whatever else
  the machine does);
- N threads: the same three interleaved sample by sample (bench/timing.py,
  settle=True: a sample starts once the previous engine's workers have
  stopped spinning, onnxruntime's for ~40 ms, and after an untimed run that
  wakes its own; each engine at its defaults), many short rounds, the 10th
  percentile of wall time: the samples other processes disturbed least.
"untuned" is built without any tuning log; "tuned" with --log only. The
"changed" column counts the layers whose schedule differs from the untuned
build's (a layer whose best record is the defaults' own counts as tuned, not
changed).

--aa replaces the untuned build by a second load of the tuned artifact: the
tuned/untuned column is then the same code timed as two configurations, and
its spread over --repeat K measurements is the method's noise. Numbers for
notes, not a test: take them at a load average under 1.5 (printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import onnx
from bench_models import load_model, random_feeds
from timing import Config, interleave, low, ort_session, others_load

import tinyc
from tinyc.compiler import CompileOptions

BUSY = 0.25  # cores other processes used: above it, all-threads figures are unreliable


def tune(path: str, target: str, budget: str, log: str, threads: int) -> str:
    """Tune for `threads`; its time and the tuner's estimate of the layers' speedup."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "tinyc", "tune", path, "--target", target,
           "--time-budget", budget, "--threads", str(threads), "--log", log, "--no-end-to-end"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tinyc tune failed: {done.stderr.strip()[-400:]}")
    estimate = next((ln for ln in done.stdout.splitlines() if ln.startswith("tuned layers")), "")
    return f"{threads}T: {time.perf_counter() - t0:.0f} s; {estimate}"


def build(model, target: str, log: str | None, threads: int):
    """The artifact for `threads`, with the records of `log` (None: no tuning at all)."""
    options = CompileOptions(threads=threads, tuning_log=log, default_tuning=False)
    return tinyc.compile(model, target=target, options=options)


def changed_layers(untuned, tuned) -> tuple[int, int]:
    """(layers whose schedule the log changed, tunable layers)."""
    before = {r["node"]: r.get("schedule") for r in untuned.report if "tuned" in r}
    after = {r["node"]: r.get("schedule") for r in tuned.report if "tuned" in r}
    return sum(after[n] != before.get(n) for n in after), len(after)


def on(model, feeds, threads: int):
    def run():
        model.set_num_threads(threads)
        return model.run(None, feeds)
    return run


def measure_at(model, feeds, target: str, log: str | None, threads: int, runs: int,
               aa: bool, folder: str) -> dict:
    """tuned/untuned and tuned/onnxruntime at `threads`, artifacts built for it."""
    untuned, tuned = build(model, target, None, threads), build(model, target, log, threads)
    changed, tunable = changed_layers(untuned, tuned)
    sub = tempfile.mkdtemp(dir=folder)
    base = tuned if aa else untuned
    a, b = base.load(os.path.join(sub, "a")), tuned.load(os.path.join(sub, "b"))
    ort = ort_session(model, threads)
    configs = [Config("untuned", on(a, feeds, threads)), Config("tuned", on(b, feeds, threads)),
               Config("ort", lambda: ort.run(None, feeds))]
    with others_load() as others:
        if threads == 1:
            interleave(configs, runs)
            t = {c.label: statistics.median(c.cpu) for c in configs}
        else:
            interleave(configs, runs, settle=True)
            t = {c.label: low(c.wall) for c in configs}
    return {"threads": threads, "changed": changed, "tunable": tunable, "ms": t,
            "others": others.cores}


def measure(name: str, args: argparse.Namespace, log: str | None, folder: str) -> list[dict]:
    model = load_model(name, False)
    feeds = random_feeds(model)
    rows = []
    for n in sorted({1, args.threads}):
        runs = args.runs if n == 1 else args.runs_all
        rows.append({"model": name} | measure_at(model, feeds, args.target, log, n, runs,
                                                 args.aa, folder))
        sys.stdout.flush()
    return rows


def print_rows(rows: list[dict], aa: bool) -> None:
    first = "A/A (same code)" if aa else "tuned/untuned"
    print(f"\n{'model':14} {'threads':>7} {'changed':>9} {'untuned ms':>10} {'tuned ms':>9} "
          f"{'ort ms':>8}  {first:>15} {'tuned/ort':>9} {'others':>6}")
    for r in rows:
        t = r["ms"]
        print(f"{r['model']:14} {r['threads']:>7} {r['changed']:>4}/{r['tunable']:<4} "
              f"{t['untuned'] * 1e3:10.3f} {t['tuned'] * 1e3:9.3f} {t['ort'] * 1e3:8.3f}  "
              f"{t['tuned'] / t['untuned']:15.3f} {t['tuned'] / t['ort']:9.3f} "
              f"{r['others']:6.2f}{' (busy: unreliable)' if r['others'] > BUSY else ''}")
    print("others: cores other processes kept busy meanwhile (of "
          f"{os.cpu_count()}); ms: 1 thread, median CPU time; more, wall time's 10th percentile")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2,resnet50,encoder")
    p.add_argument("--target", default="x86")
    p.add_argument("--budget", default="15m",
                   help="tinyc tune --time-budget per model and thread count")
    p.add_argument("--log", default="tune_report.jsonl")
    p.add_argument("--runs", type=int, default=30, help="interleaved samples at 1 thread")
    p.add_argument("--runs-all", type=int, default=200,
                   help="interleaved samples at all threads (short: the 10th percentile)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="'all threads'")
    p.add_argument("--skip-tuning", action="store_true", help="measure with --log as it is")
    p.add_argument("--aa", action="store_true",
                   help="time the tuned artifact against itself (no tuning): the noise")
    p.add_argument("--repeat", type=int, default=1, help="measure each model this many times")
    args = p.parse_args()
    log = args.log if os.path.isfile(args.log) or not (args.skip_tuning or args.aa) else None
    print(f"target {args.target}; log {log or '(none: untuned only)'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            if not (args.skip_tuning or args.aa):
                path = os.path.join(d, f"{name}.onnx")
                onnx.save(load_model(name, False), path)
                print(f"{name}: tuning at 1 and {args.threads} threads")
                for n in sorted({1, args.threads}):
                    print("  " + tune(path, args.target, args.budget, log, n))
            for _ in range(args.repeat):
                rows += measure(name, args, log, d)
                print(f"{name}: measured; load average {os.getloadavg()[0]:.2f}")
    print_rows(rows, args.aa)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
