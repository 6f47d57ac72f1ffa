"""`tinyc tune MODEL --target T [--trials N | --time-budget 10m] [--log FILE]
[--threads N] [--workers N] [--ray [ADDRESS]]`: search faster schedules for a
model's tunable layers and append the measurements to a tuning log (by
default the database in the cache folder, which every compile applies).
`tinyc tune --merge A B -o C` merges logs. A progress bar (rich, on a
terminal) shows the trials, the best speedup so far and the time left; Ctrl-C
keeps every record written, and running the same command again resumes."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from .cli_args import add_shape_args, checked_shapes
from .errors import TinycError

DEFAULT_TRIALS = 100
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def duration_arg(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': write a duration such as 90s, 10m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': expected a whole number >= 1")
    return int(text)


def add_tune_command(sub) -> None:
    t = sub.add_parser("tune", help="measure faster schedules for a model's layers into a "
                                    "tuning log (applied by later compiles)")
    t.add_argument("model", nargs="?", help="the ONNX model (not with --merge)")
    t.add_argument("--target", default="x86")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=positive_int,
                        help=f"candidates to measure over the model (default {DEFAULT_TRIALS})")
    budget.add_argument("--time-budget", type=duration_arg, metavar="DURATION",
                        help="tune for this long instead, e.g. 10m")
    t.add_argument("--log", help="the tuning log to extend (default: the database in the "
                                 "cache folder, which every compile applies)")
    t.add_argument("--workers", type=positive_int, default=1,
                   help="worker processes building and timing candidates")
    t.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="build and time candidates as tasks on a Ray cluster (HEAD:6379; "
                        "none: the one Ray finds, or a new one on this machine); a node "
                        "measures for --target T if started with the resource "
                        "tinyc-target:T (needs pip install tinyc[ray])")
    t.add_argument("--timeout", type=duration_arg, default=120.0, metavar="DURATION",
                   help="one candidate's limit; a candidate past it is dropped")
    t.add_argument("--threads", type=positive_int,
                   help="tune code built for, and timed at, this many threads (default: every "
                        "core, as compile); records apply to compiles for the same count")
    t.add_argument("--no-end-to-end", action="store_true",
                   help="skip timing the whole model, untuned and tuned, at the end")
    t.add_argument("--merge", nargs="+", metavar="LOG", help="merge these logs into -o instead")
    t.add_argument("-o", "--output", help="the merged log (with --merge)")
    add_shape_args(t, hints=False)
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    if args.merge:
        return _merge(args)
    if not args.model:
        raise TinycError("tune: name a model to tune, or --merge LOGS -o OUT")
    from .frontend.load import load_model
    from .model_meta import declared_input_shapes
    from .paths import default_tuning_log
    from .tune import TuneOptions, tune

    log = Path(args.log) if args.log else default_tuning_log()
    if log is None:
        raise TinycError("the cache is off (TINYC_CACHE_DIR), so there is no default tuning "
                         "database: pass --log FILE")
    proto = load_model(args.model)
    shapes = checked_shapes(args.shape, declared_input_shapes(proto))
    trials = args.trials or (None if args.time_budget else DEFAULT_TRIALS)
    options = TuneOptions(log, trials, args.time_budget, args.workers, args.timeout,
                          args.threads, end_to_end=not args.no_end_to_end,
                          runner=_ray_pool(args) if args.ray is not None else None)
    try:
        with _ProgressBar(enabled=not args.json) as on_progress:
            summary = tune(proto, args.target, options, shapes or None, on_progress)
    except KeyboardInterrupt:
        print(f"tinyc: interrupted; the records measured so far are in {log}; run the same "
              "command again to resume", file=sys.stderr)
        return 130
    finally:
        if options.runner is not None:  # tune closes it, unless it stopped before tuning
            options.runner.close()
    if args.json:
        print(json.dumps(_summary_json(summary), indent=1))
    else:
        _print_summary(summary)
    return 0


def _ray_pool(args: argparse.Namespace):
    """Connected before tuning starts, so a cluster without a node for the
    target fails at once."""
    from .tune.ray_pool import RayPool

    return RayPool(args.target, args.ray or None, args.timeout, args.workers)


def _merge(args: argparse.Namespace) -> int:
    from .schedule import merge_logs

    if not args.output:
        raise TinycError("tune --merge: name the merged log with -o FILE")
    count = merge_logs(args.merge, args.output)
    print(json.dumps({"output": args.output, "records": count}) if args.json else
          f"merged {len(args.merge)} logs: {count} records -> {args.output}")
    return 0


class _ProgressBar:
    """A rich progress bar on a terminal; a no-op callback elsewhere."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = self._task = None

    def __enter__(self):
        if not self.enabled:
            return lambda progress: None
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )
        except ModuleNotFoundError:
            return lambda progress: None
        self._bar = Progress(TextColumn("tuning {task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("best x{task.fields[speedup]}"),
                             TimeRemainingColumn(), console=Console(stderr=True))
        self._bar.__enter__()
        self._task = self._bar.add_task("", total=None, speedup="1.00")
        return self._update

    def _update(self, progress) -> None:
        self._bar.update(self._task, completed=progress.done, total=progress.total or None,
                         description=progress.task, speedup=f"{progress.speedup:.2f}")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _summary_json(summary) -> dict:
    def seconds(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {"log": summary.log, "new_trials": summary.new_trials,
            "failures": summary.failures, "cost_model": summary.model,
            "spearman": summary.spearman, "estimated_speedup": summary.speedup,
            "message": summary.message,
            "end_to_end": None if summary.end_to_end is None else {
                "untuned_s": summary.end_to_end[0], "tuned_s": summary.end_to_end[1],
                "speedup": summary.end_to_end[0] / summary.end_to_end[1]},
            "end_to_end_error": summary.end_to_end_error,
            "layers": [{"workload": r.workload, "nodes": r.nodes, "trials": r.trials,
                        "cost": r.cost,
                        "default_s": seconds(r.default_s), "best_s": seconds(r.best_s),
                        "speedup": r.speedup} for r in summary.rows]}


def _print_summary(summary) -> None:
    if summary.message:
        print(f"note: {summary.message}")
    if not summary.rows:
        return
    print(f"{'layer (workload)':<34} {'nodes':>5} {'trials':>6} {'default':>10} {'best':>10} "
          f"{'speedup':>7}")
    for r in summary.rows:
        print(f"{r.workload:<34} {len(r.nodes):>5} {r.trials:>6} "
              f"{_cost(r.default_s, r.cost):>10} {_cost(r.best_s, r.cost):>10} "
              f"{r.speedup:>6.2f}x")
    rho = "n/a (too few predictions)" if summary.spearman is None else f"{summary.spearman:.2f}"
    print(f"{summary.new_trials} new trials ({summary.failures} failed), log {summary.log}")
    for cost in sorted({r.cost for r in summary.rows}):
        what = "simulated cycles" if cost == "cycles" else "times"
        print(f"tuned layers together: {summary.speedup_of(cost):.2f}x faster than the defaults "
              f"(per-layer {what}, weighted by their nodes)")
    if summary.end_to_end is not None:
        untuned, tuned = summary.end_to_end
        print(f"whole model, measured: untuned {_us(untuned)}, tuned {_us(tuned)}: "
              f"{untuned / tuned:.2f}x")
    elif summary.end_to_end_error:
        print(f"whole model: not measured ({summary.end_to_end_error})")
    print(f"cost model: {summary.model}; rank correlation (Spearman) of predicted and "
          f"measured times: {rho}")


def _cost(value: float, cost: str) -> str:
    if cost == "cycles":
        return f"{value:.0f} cyc" if math.isfinite(value) else "-"
    return _us(value)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if math.isfinite(seconds) else "-"
