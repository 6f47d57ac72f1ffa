"""The tuning database: JSON lines that read back equal, merge, name the
file and line of a corrupt record, and answer the defaults for a workload
they do not know (or whose records no longer fit the lowering's space)."""

from __future__ import annotations

import json

import pytest

from tinyc.cli import main
from tinyc.schedule import (
    Knob,
    KnobSpace,
    Tunable,
    TunedSchedule,
    TuningDatabase,
    TuningLogError,
    TuningRecord,
    Workload,
    merge_logs,
)
from tinyc.schedule.database import append_records, read_records

SPACE = KnobSpace((Knob("tile", ([4, 3], [8, 3]), [8, 3]), Knob("kc", (64, 128), 128)))


def workload(m: int = 64) -> Workload:
    return Workload("MatMul", "gemm_f32", ((m, 96), (96, 80), (m, 80)), ("f32",) * 3,
                    (False, True), "{}", "t0", "0.1.0", (("m", m), ("n", 80), ("k", 96)))


def record(config: dict, t: float, m: int = 64, error: str = "") -> TuningRecord:
    return TuningRecord(workload(m), config, () if error else (t, t * 1.1), 0.05, "0.1.0", error)


def test_records_read_back_equal_and_best_is_fastest(tmp_path):
    log = tmp_path / "log.jsonl"
    recs = [record({"tile": [8, 3], "kc": 128}, 2e-5), record({"tile": [4, 3], "kc": 64}, 1e-5),
            record({"tile": [4, 3], "kc": 128}, 0.0, error="worker crashed (exit code -6)")]
    append_records(log, recs[:2])
    append_records(log, recs[2:])
    assert read_records(log) == recs
    db = TuningDatabase.load(log)
    assert db.best(workload().key).config == {"tile": [4, 3], "kc": 64}
    assert len(db.tried(workload().key)) == 3  # the crashed one counts as tried
    line = json.loads(log.read_text().splitlines()[0])
    assert line["key"] == workload().key and line["tinyc"] == "0.1.0"


def test_merge_keeps_every_record_once(tmp_path):
    a, b, out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "out.jsonl"
    shared = record({"tile": [8, 3], "kc": 128}, 2e-5)
    append_records(a, [shared, record({"tile": [4, 3], "kc": 64}, 3e-5)])
    append_records(b, [shared, record({"tile": [4, 3], "kc": 128}, 1e-5, m=32)])
    assert merge_logs([a, b], out) == 3
    db = TuningDatabase.load(out)
    assert db.best(workload(32).key).best == 1e-5
    assert db.best(workload(64).key).best == 2e-5


def test_cli_merge(tmp_path, capsys):
    a, b, out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "m" / "out.jsonl"
    append_records(a, [record({"tile": [8, 3], "kc": 128}, 2e-5)])
    append_records(b, [record({"tile": [4, 3], "kc": 64}, 1e-5)])
    assert main(["tune", "--merge", str(a), str(b), "-o", str(out)]) == 0
    assert "2 records" in capsys.readouterr().out
    assert len(read_records(out)) == 2


@pytest.mark.parametrize("bad, why", [
    ("{not json", "not JSON"),
    ('{"workload": {"op": "MatMul"}}', "not a tuning record"),
    ('{"workload": WL, "key": "0000", "config": {}}', "does not match its workload"),
])
def test_a_corrupt_line_names_file_and_line(tmp_path, bad, why):
    log = tmp_path / "log.jsonl"
    append_records(log, [record({"tile": [8, 3], "kc": 128}, 2e-5)])
    with open(log, "a") as f:
        f.write(bad.replace("WL", json.dumps(workload().to_json())) + "\n")
    with pytest.raises(TuningLogError, match=rf"log.jsonl:2: .*{why}"):
        TuningDatabase.load(log)


def test_compile_with_a_corrupt_log_is_a_clear_cli_error(tmp_path, capsys):
    log = tmp_path / "bad.jsonl"
    log.write_text("\n{oops\n")
    model = tmp_path / "m.onnx"
    from tune_models import matmul_model

    model.write_bytes(matmul_model().SerializeToString())
    code = main(["compile", str(model), "-o", str(tmp_path / "out"), "--tuning-log", str(log)])
    assert code == 1
    assert f"{log}:2: not JSON" in capsys.readouterr().err


def test_unknown_workload_and_stale_records_get_the_defaults(tmp_path):
    db = TuningDatabase([record({"tile": [4, 3], "kc": 64}, 1e-5),
                         record({"tile": [2, 2], "kc": 64}, 1e-6, m=32)])  # not in SPACE
    source = TunedSchedule(db)
    known = source.decide(Tunable(workload(64), SPACE))
    assert known.tuned and known.config == {"tile": [4, 3], "kc": 64}
    for w in (workload(16), workload(32)):  # no record; a record illegal in today's space
        decision = source.decide(Tunable(w, SPACE))
        assert not decision.tuned and decision.config == SPACE.defaults()


def test_knob_space_rejects_a_default_it_does_not_list():
    with pytest.raises(ValueError, match="default"):
        Knob("kc", (64, 128), 256)


def test_a_schedule_replaces_the_default_only_beyond_the_noise():
    """The minimum over many candidates is partly luck: a record must beat the
    defaults' own record by more than the margin (and twice either's CV)."""
    default = {"tile": [8, 3], "kc": 128}
    lucky = {"tile": [4, 3], "kc": 64}
    near = TuningDatabase([record(default, 1.00e-5), record(lucky, 0.98e-5)])
    assert near.best(workload().key, SPACE).config == default  # 2% < 2 x CV (0.05)
    assert near.best(workload().key).config == lucky  # no space: plain fastest
    far = TuningDatabase([record(default, 1.00e-5), record(lucky, 0.80e-5)])
    assert far.best(workload().key, SPACE).config == lucky
    unmeasured_default = TuningDatabase([record(lucky, 0.98e-5)])
    assert unmeasured_default.best(workload().key, SPACE).config == lucky
