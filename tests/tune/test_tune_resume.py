"""A smoke tune of a tiny MatMul: interrupted (Ctrl-C) after its first
record, it keeps what it wrote; run again it measures only the rest; a third
run, with a complete log, measures nothing; compiling with the log applies
the best record."""

from __future__ import annotations

import pytest
from tune_models import matmul_model

from tinyc.compiler import CompileOptions, compile_model
from tinyc.schedule import TuningDatabase
from tinyc.schedule.database import MARGIN
from tinyc.tune import TuneOptions, tune


def test_interrupt_resume_and_a_complete_log_runs_nothing(tmp_path):
    model, log = matmul_model(), tmp_path / "log.jsonl"
    options = TuneOptions(log, trials=4, timeout_s=60, repeats=3)

    def interrupt(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(model, "x86", options, on_progress=interrupt)
    assert len(TuningDatabase.load(log)) == 1  # the defaults' record, written before Ctrl-C
    resumed = tune(model, "x86", options)
    assert resumed.new_trials == 3 and resumed.failures == 0
    again = tune(model, "x86", options)
    assert again.new_trials == 0
    (row,) = again.rows
    assert row.trials == 4 and row.best_s <= row.default_s
    report = compile_model(model, "x86", CompileOptions(tuning_log=str(log))).report
    (mm,) = [r for r in report if r["node"] == "mm"]
    db = TuningDatabase.load(log)
    best = db.best(db.records[0].key)
    # after tuning, the defaults and the best were measured once more side by side
    # (when one beat the defaults): 4 candidates, then maybe 2 rechecks
    defaults = db.records[0].config
    assert len(db.records) in (4, 6)
    if len(db.records) == 6:
        assert db.records[-2].config == defaults != db.records[-1].config
    # the compile takes the best only when it beats the defaults beyond the noise
    default = min((r for r in db.records if r.config == defaults and r.ok), key=lambda r: r.best)
    margin = max(MARGIN, 2 * best.cv, 2 * default.cv)
    expected = best.config if best.best < default.best * (1 - margin) else defaults
    assert mm["tuned"] is True and mm["schedule"] == expected
