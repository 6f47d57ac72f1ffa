"""`tinyc tune` end to end on a tiny model: the per-layer table as JSON, the
log written where --log says, and a second run with the log complete."""

from __future__ import annotations

import argparse
import json

import pytest
from tune_models import matmul_model, mlp_model

from tinyc.cli import main
from tinyc.cli_tune import duration_arg


def test_durations():
    assert [duration_arg(t) for t in ("90", "90s", "10m", "1.5h")] == [90, 90, 600, 5400]
    for bad in ("soon", "0", "10d", "-1m"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration_arg(bad)


def test_cli_tune_json_then_nothing_left(tmp_path, capsys):
    model, log = tmp_path / "m.onnx", tmp_path / "logs" / "t.jsonl"
    model.write_bytes(matmul_model().SerializeToString())
    argv = ["tune", str(model), "--trials", "2", "--log", str(log), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    configs = {json.dumps(json.loads(line)["config"]) for line in log.read_text().splitlines()}
    assert out["new_trials"] == 2 and len(configs) == 2  # (+ a recheck of both when tuned)
    (layer,) = out["layers"]
    assert layer["nodes"] == ["mm"] and layer["trials"] == 2 and layer["speedup"] >= 1.0
    e2e = out["end_to_end"]  # the whole model, timed with the defaults and tuned
    assert e2e is not None, out["end_to_end_error"]
    assert e2e["untuned_s"] > 0 and e2e["tuned_s"] > 0
    assert main(argv + ["--no-end-to-end"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["new_trials"] == 0 and again["end_to_end"] is None


@pytest.mark.tune_full
def test_tune_an_mlp_with_the_cost_model(tmp_path, capsys):
    """Dozens of candidates: the cost model is trained and its predictions are
    ranked against the measurements."""
    pytest.importorskip("lightgbm", reason="the tune extra (lightgbm) is not installed")
    model, log = tmp_path / "mlp.onnx", tmp_path / "t.jsonl"
    model.write_bytes(mlp_model(m=64, sizes=(256, 512, 256, 128)).SerializeToString())
    assert main(["tune", str(model), "--trials", "48", "--log", str(log), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "LightGBM" in out and "Spearman" in out and "n/a" not in out
    assert main(["compile", str(model), "-o", str(tmp_path / "a"), "--tuning-log", str(log)]) == 0
    assert "tuned layers: 3 of 3 tunable" in capsys.readouterr().out


def test_records_apply_at_the_thread_count_tuned_for(tmp_path, capsys):
    """--threads picks the code tuned (default: every core, as a compile); a
    record applies only to a compile for the same count: the workload's key
    holds the target's threads, and the knob space has a thread split beyond 1."""
    from tinyc.compiler import CompileOptions, compile_model

    model, log = matmul_model(), tmp_path / "t.jsonl"
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())

    def tuned_at(threads: int) -> bool:
        art = compile_model(model, "x86", CompileOptions(threads=threads, tuning_log=str(log)))
        return next(r for r in art.report if r["node"] == "mm")["tuned"]

    argv = ["tune", str(path), "--trials", "2", "--log", str(log), "--no-end-to-end", "--json"]
    assert main(argv + ["--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["new_trials"] == 2
    assert tuned_at(1) and not tuned_at(2)
    assert main(argv + ["--threads", "2"]) == 0  # a new workload: measured, not resumed
    assert json.loads(capsys.readouterr().out)["new_trials"] == 2
    assert tuned_at(1) and tuned_at(2)
    keys = {json.loads(line)["key"] for line in log.read_text().splitlines()}
    assert len(keys) == 2
