"""Candidates run in worker processes: one that crashes (an abort, as a
segfaulting kernel would) or hangs costs its own result only; the pool
replaces the worker and goes on."""

from __future__ import annotations

import functools
import json

from tune_models import matmul_model
from tune_probes import abort_unless, build_or_time, square

from tinyc.compiler import CompileOptions
from tinyc.tune import TuneOptions, tune
from tinyc.tune.pool import Failure, LocalPool
from tinyc.tune.tasks import extract_tasks


def test_pool_survives_a_crash_a_hang_and_an_exception():
    """...and its workers, two, build side by side but time alone."""
    with LocalPool(workers=2, timeout_s=3, preload="tune_probes") as pool:
        results = dict(pool.run(square, [3, 13, 4, 17, 19, 5]))
        spans = [r for _, r in pool.run(build_or_time, [0, 1, 2, 3, 4, 5], timeout_s=30)]
    for kind, start, end in spans:  # a timing overlaps nothing; builds may overlap builds
        others = [(k, s, e) for k, s, e in spans if (s, e) != (start, end)]
        if kind == "time":
            assert all(e <= start or s >= end for _, s, e in others), spans
    assert {i: results[i] for i in (0, 2, 5)} == {0: 9, 2: 16, 5: 25}
    assert isinstance(results[1], Failure) and "crashed" in results[1].reason
    assert isinstance(results[3], Failure) and "timed out" in results[3].reason
    assert isinstance(results[4], Failure) and "nineteen" in results[4].reason


def test_tuning_goes_on_past_crashing_candidates(tmp_path):
    model = matmul_model()
    (task,) = extract_tasks(model, "x86", CompileOptions(default_tuning=False))
    log = tmp_path / "log.jsonl"
    probe = functools.partial(abort_unless, task.tunable.space.defaults())
    summary = tune(model, "x86", TuneOptions(log, trials=3, timeout_s=60, probe=probe))
    assert summary.new_trials == 3 and summary.failures == 2
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [bool(r["error"]) for r in records] == [False, True, True]
    assert all("crashed" in r["error"] for r in records[1:])
    (row,) = summary.rows
    assert row.best_s == row.default_s  # only the defaults were measured
