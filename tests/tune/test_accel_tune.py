"""Tuning the GEMM-array accelerator (accel_sim_small) in simulated cycles:
the region compiler declares each layer's space (tiles, loop order, buffer
slots) with its buffer limits as data, and the defaults are the untuned
choice; a candidate's cost is the cycles its one-layer model simulates; a
record in a log changes the program a compile builds, its cycles as measured,
its outputs not a bit."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
from accel_models import DEVICE, PINS, TARGET, feeds, two_conv_model

import tinyc
from tinyc.accel.engine import engine_of
from tinyc.accel.schedule import KERNEL, SLOTS
from tinyc.accel.tiling import Tiles, choose_tiles
from tinyc.cli_compile import _tunable_layers
from tinyc.compiler import CompileOptions
from tinyc.plugin import resolve_spec_by_name
from tinyc.schedule import TunedSchedule, TuningDatabase, TuningLogError, TuningRecord
from tinyc.schedule.database import append_records
from tinyc.tune import TuneOptions, tune
from tinyc.tune.measure import MeasureJob, measure
from tinyc.tune.tasks import extract_tasks

UNTUNED = CompileOptions(pin=PINS, default_tuning=False)


@pytest.fixture(scope="module")
def tasks():
    return extract_tasks(two_conv_model(), TARGET, UNTUNED)


def _engine():
    return engine_of(resolve_spec_by_name(DEVICE))


def _tiles(config) -> Tiles:
    return Tiles(config["mt"], config["nt"], config["kt"], config["order"] == "n_outer")


def _cycles(log=None):
    model = two_conv_model()
    opts = CompileOptions(pin=PINS, default_tuning=False, tuning_log=log)
    session = tinyc.InferenceSession(model, TARGET, opts)
    (out,) = session.run(None, feeds(model))
    events = session.trace()["traceEvents"]
    return out, sum(e["args"]["cycles"] for e in events
                    if e.get("cat") == "region" and "cycles" in e.get("args", {}))


def test_the_accel_space_is_declared_with_its_buffer_limits(tasks):
    """Both layers are tunable workloads measured in cycles; the defaults are
    choose_tiles' tiles with double buffering; the limits admit exactly the
    tiles that fit their slots (as the simulator checks them)."""
    accel = [t for t in tasks if t.tunable.workload.kernel == KERNEL]
    assert sorted(n for t in accel for n in t.nodes) == ["conv1x1", "conv3x3"]
    e = _engine()
    for task in accel:
        space, w = task.tunable.space, task.tunable.workload
        assert w.cost == "cycles" and task.pin == {task.nodes[0]: DEVICE}
        assert space.names == ("mt", "nt", "kt", "order", "slots")
        dims = dict(w.dims)
        job = type("Job", (), {"m": dims["m"], "n": dims["n"], "k": dims["k"],
                               "batch": dims["batch"], "name": task.nodes[0]})
        defaults = space.defaults()
        assert _tiles(defaults) == choose_tiles(job, e) and defaults["slots"] == [2, 2, 2]
        fits = 0
        for values in itertools.product(*(k.values for k in space.knobs)):
            config = dict(zip(space.names, values, strict=True))
            legal = space.legal(config)
            assert legal == _tiles(config).fits(e, tuple(config["slots"])), config
            fits += legal
        assert 1 < fits == space.size < len(list(itertools.product(
            *(k.values for k in space.knobs))))  # the limits rule some out
        rng, config = random.Random(1), defaults
        for _ in range(100):
            config = space.mutate(config, rng)
            assert space.legal(config) and space.legal(space.sample(rng))


def test_a_candidate_is_measured_in_simulated_cycles(tasks):
    """One run, deterministic; a smaller tile with one slot per buffer costs
    more cycles than the defaults."""
    task = next(t for t in tasks if t.nodes == ["conv3x3"])
    space = task.tunable.space

    def run(config):
        return measure(MeasureJob(task.graph, TARGET, task.key, config, cost="cycles",
                                  pin=task.pin))

    first, again = run(space.defaults()), run(space.defaults())
    assert first.error == "" and len(first.times) == 1 and first.cv == 0.0
    assert first.times == again.times and first.best > 1000
    small = space.defaults() | {"mt": min(space.knobs[0].values), "slots": list(SLOTS[-1])}
    assert space.legal(small)
    assert run(small).best > first.best


def test_a_record_changes_the_program_its_cycles_and_no_output(tmp_path, tasks):
    """A non-default record (one slot per buffer, other tiles) is applied: the
    program says so, the compiled layer simulates the cycles the tuner measured
    for it, and the outputs are those of the untuned program."""
    task = next(t for t in tasks if t.nodes == ["conv3x3"])
    space = task.tunable.space
    config = space.defaults() | {"slots": [1, 1, 1], "order": "n_outer"}
    config["mt"] = max(v for v in space.knobs[0].values if space.legal(config | {"mt": v}))
    assert space.legal(config) and config != space.defaults()
    measured = measure(MeasureJob(task.graph, TARGET, task.key, config, cost="cycles",
                                  pin=task.pin)).best
    log = tmp_path / "accel.jsonl"
    append_records(log, [TuningRecord(task.tunable.workload, config, (measured,), 0.0)])
    art = tinyc.compile(two_conv_model(), TARGET, CompileOptions(
        pin=PINS, default_tuning=False, tuning_log=str(log)))
    program = art.programs[DEVICE]["region_0"]
    (job,) = program.jobs
    assert job.slots == (1, 1, 1)
    assert program.schedules[0] == {"job": "conv3x3", "tuned": True, "config": config}
    assert {c.slot for c in program.commands if hasattr(c, "slot")} == {0}
    assert _tunable_layers(art) == [{"node": "conv3x3", "tuned": True},
                                    {"node": "conv1x1", "tuned": False}]  # tinyc compile's
    plain_out, plain_cycles = _cycles()
    tuned_out, tuned_cycles = _cycles(str(log))
    np.testing.assert_array_equal(tuned_out, plain_out)
    plain_layer = measure(MeasureJob(task.graph, TARGET, task.key, space.defaults(),
                                     cost="cycles", pin=task.pin)).best
    assert tuned_cycles - plain_cycles == measured - plain_layer


class _InProcess:
    """Measures in this process: isolation is test_tune_isolation's subject, and
    a worker's start would cost more than these candidates."""

    def run(self, fn, jobs, timeout_s=None):
        for index, job in enumerate(jobs):
            yield index, fn(job)

    def close(self) -> None:
        pass


def test_tuning_never_adds_cycles_and_keeps_the_bits(tmp_path):
    """A short tune of both layers: compiled with its log, the model simulates
    no more cycles than untuned, with identical outputs."""
    log = tmp_path / "tune.jsonl"
    summary = tune(two_conv_model(), TARGET, TuneOptions(log, trials=12, pin=PINS,
                                                         cost="cycles", runner=_InProcess()))
    assert summary.failures == 0 and len(summary.rows) == 2
    assert all(r.best_s <= r.default_s for r in summary.rows)
    db = TuningDatabase.load(log)
    assert all(r.workload.cost == "cycles" and len(r.times) == 1 for r in db.records)
    plain_out, plain_cycles = _cycles()
    tuned_out, tuned_cycles = _cycles(str(log))
    np.testing.assert_array_equal(tuned_out, plain_out)
    assert tuned_cycles <= plain_cycles
    print(f"two int8 convs on {DEVICE}: {plain_cycles} cycles untuned, {tuned_cycles} tuned")


def test_records_that_do_not_fit_are_refused(tmp_path, tasks):
    """A record whose tile overflows its slots (a log from another spec, or
    edited) is not applied: the defaults are; a cost kind tinyc does not know
    is a clear error naming the line."""
    task = next(t for t in tasks if t.nodes == ["conv3x3"])
    space = task.tunable.space
    too_big = space.defaults() | {"mt": max(space.knobs[0].values),
                                  "kt": max(space.knobs[2].values)}
    assert not space.legal(too_big)
    log = tmp_path / "big.jsonl"
    append_records(log, [TuningRecord(task.tunable.workload, too_big, (1.0,), 0.0)])
    decision = TunedSchedule(TuningDatabase.load(log)).decide(task.tunable)
    assert not decision.tuned and decision.config == space.defaults()
    doc = json.loads(log.read_text())
    doc["workload"]["cost"] = "joules"
    doc.pop("key")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(doc) + "\n")
    with pytest.raises(TuningLogError, match=r"bad.jsonl:1: .*joules"):
        TuningDatabase.load(bad)
