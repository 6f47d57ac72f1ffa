"""The tuning driver: one process owns the log.

For each task (heaviest first) it measures the defaults (the baseline), then
rounds of candidates the search proposes, until the task's share of the trial
budget or of the time budget is spent or its space is exhausted. Every result
is appended to the log as it comes in (fsynced), so Ctrl-C loses at most the
candidates being measured; a second run reads the log, counts what each task
already has, and measures only the rest: with a complete log, nothing.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..compiler import CompileOptions
from ..frontend.load import load_model
from ..schedule import Tunable, TuningDatabase, TuningRecord
from ..schedule.database import append_records
from ..schedule.space import config_id
from .cost_model import CostModel, make_cost_model, spearman
from .measure import MeasureJob, MeasureResult, measure
from .pool import Failure, LocalPool, Runner
from .search import propose
from .tasks import Task, extract_tasks


@dataclass
class TuneOptions:
    log: Path
    trials: int | None = None  # over the whole model; None: the time budget decides
    time_budget_s: float | None = None
    workers: int = 1
    timeout_s: float = 120.0  # one candidate's build and measurement
    threads: int | None = None  # as CompileOptions.threads: tuned for this many
    repeats: int = 5
    seed: int = 0
    probe: Callable | None = None  # test hook, see MeasureJob.probe
    runner: Runner | None = None  # default: a LocalPool of `workers`
    # at the end, time the whole model with the defaults and with the tuned layers
    end_to_end: bool = False
    pin: dict[str, str] = field(default_factory=dict)  # node -> device, as CompileOptions.pin
    cost: str | None = None  # tune only workloads measured so ("time", "cycles"); None: all


@dataclass
class Progress:
    done: int = 0  # new trials this run
    total: int = 0  # new trials planned (an estimate under a time budget)
    speedup: float = 1.0  # estimated over the tasks tuned so far (their defaults / best)
    task: str = ""


@dataclass
class LayerRow:
    workload: str
    nodes: list[str]
    default_s: float
    best_s: float
    trials: int
    cost: str = "time"  # default_s and best_s are seconds, or simulated cycles

    @property
    def speedup(self) -> float:
        return self.default_s / self.best_s if self.best_s > 0 else 1.0


@dataclass
class TuneSummary:
    rows: list[LayerRow] = field(default_factory=list)
    new_trials: int = 0
    failures: int = 0
    spearman: float | None = None
    model: str = ""
    message: str = ""
    log: str = ""
    # the whole model's time (s) with the defaults and with the best records
    end_to_end: tuple[float, float] | None = None
    end_to_end_error: str = ""

    @property
    def speedup(self) -> float:
        """Time-weighted over every tuned workload: sum of defaults / sum of bests
        (over those measured in time; of an accelerator alone, in cycles)."""
        return self.speedup_of("time") if any(r.cost == "time" for r in self.rows) else \
            self.speedup_of("cycles")

    def speedup_of(self, cost: str) -> float:
        rows = [r for r in self.rows if r.cost == cost and math.isfinite(r.best_s)
                and math.isfinite(r.default_s)]
        best = sum(r.best_s * len(r.nodes) for r in rows)
        return sum(r.default_s * len(r.nodes) for r in rows) / best if best else 1.0


def tune(model, target: str, options: TuneOptions,
         input_shapes: dict[str, list[int]] | None = None,
         on_progress: Callable[[Progress], None] | None = None) -> TuneSummary:
    compile_opts = CompileOptions(threads=options.threads, default_tuning=False,
                                  pin=dict(options.pin))
    tasks = [t for t in extract_tasks(model, target, compile_opts, input_shapes)
             if options.cost in (None, t.tunable.workload.cost)]
    if not tasks:
        return TuneSummary(message="no tunable layers in this model (today: fp32 MatMul, "
                                   "Gemm and convolutions computed as GEMMs)",
                           log=str(options.log))
    db = TuningDatabase.load(options.log) if Path(options.log).is_file() else TuningDatabase()
    cost, message = make_cost_model(options.seed)
    driver = _Driver(target, options, db, cost, tasks, on_progress or (lambda p: None))
    summary = TuneSummary(model=cost.name, message=message, log=str(options.log))
    shares = _shares(tasks, options)
    driver.progress.total = sum(max(0, s - len(db.tried(t.key))) for t, s in zip(tasks, shares,
                                                                               strict=True))
    runner = options.runner or LocalPool(options.workers, options.timeout_s)
    try:
        for i, (task, share) in enumerate(zip(tasks, shares, strict=True)):
            deadline = driver.task_deadline(len(tasks) - i)
            driver.tune_task(task, share, deadline, runner)
        if options.end_to_end:
            _end_to_end(model, target, options, input_shapes, driver, runner, summary)
    finally:
        runner.close()
        summary.rows = [driver.row(t) for t in tasks]
        summary.new_trials, summary.failures = driver.progress.done, driver.failures
        summary.spearman = spearman(driver.predicted, driver.observed)
    return summary


def _end_to_end(model, target: str, options: TuneOptions, input_shapes, driver: _Driver,
                runner: Runner, summary: TuneSummary) -> None:
    """The whole model timed twice in the workers: the defaults, the best records."""
    data = load_model(model).SerializeToString()
    best = {t.key: r.config for t in driver.tasks
            if (r := driver.db.best(t.key, t.tunable.space)) is not None}
    jobs = [MeasureJob(data, target, "", {}, options.threads, options.repeats, others=o,
                       input_shapes=input_shapes, pin=dict(options.pin)) for o in ({}, best)]
    results = dict(runner.run(measure, jobs, timeout_s=10 * options.timeout_s))
    failed = [r for r in results.values() if isinstance(r, Failure) or r.error]
    if failed:
        f = failed[0]
        summary.end_to_end_error = f.reason if isinstance(f, Failure) else f.error
        return
    summary.end_to_end = (results[0].best, results[1].best)


def _shares(tasks: list[Task], options: TuneOptions) -> list[int]:
    """Trials per task: the budget split evenly (at least the defaults and one
    more), capped by each space's size; unbounded under a time budget alone."""
    if options.trials is None:
        return [t.tunable.space.size for t in tasks]
    each = max(2, math.ceil(options.trials / max(1, len(tasks))))
    return [min(each, t.tunable.space.size) for t in tasks]


class _Driver:
    def __init__(self, target: str, options: TuneOptions, db: TuningDatabase, cost: CostModel,
                 tasks: list[Task], on_progress: Callable[[Progress], None]):
        self.target, self.options, self.db, self.cost = target, options, db, cost
        self.tasks = tasks
        self.on_progress = on_progress
        self.progress = Progress()
        self.rng = random.Random(options.seed)
        self.failures = 0
        self.rechecks = 0  # the defaults and the best measured again after each task
        self.started = time.monotonic()
        self.predicted: list[float] = []  # the model's prediction for each measured candidate
        self.observed: list[float] = []  # ... and its measured (normalized) time
        self.features: list[list[float]] = []
        self.targets: list[float] = []
        self._train_on_log()

    def task_deadline(self, tasks_left: int) -> float:
        """This task's end under the time budget: an even share of what is left."""
        if self.options.time_budget_s is None:
            return math.inf
        left = self.started + self.options.time_budget_s - time.monotonic()
        return time.monotonic() + max(0.0, left) / max(1, tasks_left)

    def tune_task(self, task: Task, share: int, deadline: float, runner: Runner) -> None:
        self.progress.task = task.tunable.workload.summary
        space = task.tunable.space
        batch = max(1, self.options.workers) * 2
        measured_any = False
        while len(self.db.tried(task.key)) < share and time.monotonic() < deadline:
            tried = self.db.tried(task.key)
            if config_id(space.defaults()) not in tried:
                configs = [space.defaults()]
            else:
                measured = [(r.config, r.best) for r in self.db.of(task.key) if r.ok]
                count = min(batch, share - len(tried))
                configs = propose(space, measured, tried, lambda cs: self._score(task, cs),
                                  self.cost, count, self.rng)
            if not configs:
                break  # every legal configuration is measured
            self._measure(task, configs, runner)
            measured_any = True
        if measured_any:
            self._recheck(task, runner)

    def _recheck(self, task: Task, runner: Runner) -> None:
        """The defaults and the best, measured once more side by side: the
        defaults went first, in a worker just started, and a speedup should not
        come from that (each keeps its faster measurement)."""
        best = self.db.best(task.key, task.tunable.space)
        defaults = task.tunable.space.defaults()
        if best is not None and config_id(best.config) != config_id(defaults):
            self._measure(task, [defaults, best.config], runner, recheck=True)

    def _score(self, task: Task, configs) -> list[float]:
        return list(self.cost.predict([task.tunable.features(c) for c in configs]))

    def _measure(self, task: Task, configs: list, runner: Runner, recheck: bool = False) -> None:
        """Measure `configs`, writing each record as it comes; a recheck is no new
        trial and teaches the model nothing new."""
        predicted = self._score(task, configs) if self.cost.trained and not recheck else None
        jobs = [MeasureJob(task.graph, self.target, task.key, c, self.options.threads,
                           self.options.repeats, probe=self.options.probe,
                           cost=task.tunable.workload.cost, pin=task.pin) for c in configs]
        for index, result in runner.run(measure, jobs):
            record = self._record(task, configs[index], result)
            append_records(self.options.log, [record])  # on disk before anything else
            self.db.add(record)
            if recheck:
                self.rechecks += 1
            elif record.ok:
                self.progress.done += 1
                self._learn(task, record, None if predicted is None else predicted[index])
            else:
                self.progress.done += 1
                self.failures += 1
            self.progress.speedup = self._speedup_so_far()
            self.on_progress(self.progress)

    def _record(self, task: Task, config, result) -> TuningRecord:
        if isinstance(result, Failure):
            return TuningRecord(task.tunable.workload, config, (), 0.0, error=result.reason)
        assert isinstance(result, MeasureResult)
        return TuningRecord(task.tunable.workload, config, result.times, result.cv,
                            error=result.error)

    def _baseline(self, task: Task) -> float | None:
        """The defaults' measured time: what the task's speedups are relative to."""
        default = config_id(task.tunable.space.defaults())
        times = [r.best for r in self.db.of(task.key) if r.ok and config_id(r.config) == default]
        return min(times) if times else None

    def _learn(self, task: Task, record: TuningRecord, predicted: float | None) -> None:
        base = self._baseline(task)
        if base is None:
            return
        target = math.log(record.best / base)
        if predicted is not None:
            self.predicted.append(float(predicted))
            self.observed.append(target)
        self.features.append(task.tunable.features(record.config))
        self.targets.append(target)
        self.cost.fit(self.features, self.targets)

    def _train_on_log(self) -> None:
        """What the log already holds teaches the model: this model's layers from
        an earlier run, and other models' layers of the same kernel family with
        the same knobs (the model is shared across shapes and models). Each
        workload's first record is its defaults (measured first): the baseline."""
        spaces = {(t.tunable.workload.kernel, frozenset(t.tunable.space.names)):
                  t.tunable.space for t in self.tasks}
        for key in self.db.keys():
            records = self.db.of(key)
            first = records[0]
            space = spaces.get((first.workload.kernel, frozenset(first.config)))
            if space is None or not first.ok:
                continue
            for r in records:
                if r.ok and set(r.config) == set(space.names):
                    tunable = Tunable(r.workload, space)
                    self.features.append(tunable.features(r.config))
                    self.targets.append(math.log(r.best / first.best))
        self.cost.fit(self.features, self.targets)

    def _speedup_so_far(self) -> float:
        num = den = 0.0
        for task in self.tasks:
            base, best = self._baseline(task), self.db.best(task.key, task.tunable.space)
            if base is not None and best is not None:
                num, den = num + base * len(task.nodes), den + best.best * len(task.nodes)
        return num / den if den else 1.0

    def row(self, task: Task) -> LayerRow:
        best = self.db.best(task.key, task.tunable.space)
        base = self._baseline(task)
        return LayerRow(task.tunable.workload.summary, task.nodes,
                        base if base is not None else math.inf,
                        best.best if best else math.inf, len(self.db.tried(task.key)),
                        task.tunable.workload.cost)
