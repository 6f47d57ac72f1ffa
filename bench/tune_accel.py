"""Issue 13's accel_sim_small figure: the simulated cycles of int8 resnet50,
tuned vs untuned, per layer and in total.

The model is quantize_static's QDQ resnet50 (tinyc.testing.quant_models,
seeded weights). On accel_sim_small the partitioner finds no convolution
worth the transfer beside an x86 core, so every layer the array can run is
pinned to it (as `tinyc explain --pin` does), the same for both runs. The
tuner measures each layer shape alone in simulated cycles; the whole model is
then compiled untuned and with the log, run once each, and the regions' cycles
compared (the outputs must be identical).

    python bench/tune_accel.py [--trials 480] [--log FILE] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import tinyc
from tinyc.accel.engine import engine_of
from tinyc.compiler import CompileOptions, partition_model
from tinyc.plugin import resolve_spec_by_name
from tinyc.target import resolve_devices
from tinyc.testing.quant_models import quantized_model
from tinyc.tune import TuneOptions, tune
from tinyc.tune.tasks import extract_tasks

TARGET = "x86,accel_sim_small"
DEVICE = "accel_sim_small"


def array_pins(model) -> dict[str, str]:
    """Every node the device can run (only the cost model kept it off) -> the device."""
    g, p = partition_model(model, resolve_devices(TARGET), CompileOptions())
    return {n.name: DEVICE for n in g.nodes
            if p.placements[n.name].device == DEVICE
            or p.placements[n.name].category == "not worth the transfer"}


def compute_bound(tasks, engine) -> float:
    """Cycles the compute unit needs at least for the tuned workloads, whatever
    the tiles (simulator.py's model without fill, drain or DMA): every MAC pass
    of rows x cols, plus the post-op ALU's m * n / cols."""
    total = 0.0
    for t in tasks:
        d = dict(t.tunable.workload.dims)
        passes = -(-d["k"] // engine.rows) * -(-d["n"] // engine.cols)
        total += len(t.nodes) * d["batch"] * (d["m"] * passes + d["m"] * d["n"] / engine.cols)
    return total


def simulated_run(model, feeds, pins: dict[str, str], log: str | None):
    """Outputs, total cycles of the device regions, cycles per layer (its span)."""
    opts = CompileOptions(pin=pins, default_tuning=False, tuning_log=log)
    session = tinyc.InferenceSession(model, TARGET, opts)
    outputs = session.run(None, feeds)
    total, layers, hz = 0, {}, 0.0
    for e in session.trace()["traceEvents"]:
        args = e.get("args", {})
        if e.get("cat") == "region" and "cycles" in args:
            total += args["cycles"]
            hz = args["cycles"] / e["dur"] if e["dur"] else 0.0  # cycles per us
        elif e.get("cat") == "layer":
            layers[e["name"]] = round(e["dur"] * hz)
    return outputs, total, layers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=480, help="candidates over the model")
    p.add_argument("--log", help="tuning log (default: a temporary file)")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()

    model = quantized_model("resnet50", "qdq")
    feeds = {model.graph.input[0].name: np.random.default_rng(3).standard_normal(
        (1, 3, 224, 224), dtype=np.float32)}
    pins = array_pins(model)
    print(f"int8 resnet50 on {TARGET}: {len(pins)} layers pinned to {DEVICE}")
    log = Path(args.log) if args.log else \
        Path(tempfile.mkdtemp(prefix="tinyc-tune-accel-")) / "accel.jsonl"

    t0 = time.perf_counter()
    options = TuneOptions(log, trials=args.trials, workers=args.workers, pin=pins,
                          cost="cycles")  # the device's layers (the CPU's are timed)
    summary = tune(model, TARGET, options)
    tune_s = time.perf_counter() - t0
    print(f"tuned in {tune_s:.0f} s: {summary.new_trials} new trials ({summary.failures} "
          f"failed), log {log}; cost model {summary.model}, Spearman "
          f"{'n/a' if summary.spearman is None else f'{summary.spearman:.2f}'}")
    print(f"\nper layer shape, measured alone ({len(summary.rows)} workloads):")
    print(f"{'workload (m x n x k x batch)':<38} {'nodes':>5} {'trials':>6} {'default':>10} "
          f"{'tuned':>10} {'ratio':>6}")
    for r in summary.rows:
        print(f"{r.workload:<38} {len(r.nodes):>5} {r.trials:>6} {r.default_s:>10.0f} "
              f"{r.best_s:>10.0f} {r.speedup:>5.2f}x")

    untuned_out, untuned, untuned_layers = simulated_run(model, feeds, pins, None)
    tuned_out, tuned, tuned_layers = simulated_run(model, feeds, pins, str(log))
    same = all(np.array_equal(a, b) for a, b in zip(untuned_out, tuned_out, strict=True))
    print("\nper layer in the model (its span in its region; layers overlap):")
    print(f"{'layer':<40} {'untuned':>10} {'tuned':>10} {'ratio':>6}")
    for name, cycles in untuned_layers.items():
        after = tuned_layers.get(name, 0)
        print(f"{name:<40} {cycles:>10} {after:>10} "
              f"{cycles / after if after else float('nan'):>5.2f}x")
    print(f"\ntotal simulated cycles of the {DEVICE} regions: untuned {untuned:,}, tuned "
          f"{tuned:,}: {untuned / tuned:.3f}x fewer; outputs identical: {same}")
    engine = engine_of(resolve_spec_by_name(DEVICE))
    tasks = [t for t in extract_tasks(model, TARGET, CompileOptions(pin=pins))
             if t.tunable.workload.cost == "cycles"]
    bound = compute_bound(tasks, engine)
    print(f"the compute unit's lower bound for these layers (every MAC pass and post-op, "
          f"no fill, drain or DMA): {bound:,.0f} cycles; untuned at {bound / untuned:.1%} "
          f"of the bound, tuned at {bound / tuned:.1%}")
    if not same:
        raise SystemExit("tuned and untuned outputs differ")


if __name__ == "__main__":
    main()
