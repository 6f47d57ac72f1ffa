"""Distributed tuning on a two-node Ray cluster on this machine
(ray.cluster_utils.Cluster; -m ray_full, a minute or two): a head that only
builds and a worker node offering `tinyc-target:x86` that times. Covered:
measurements run on the node with the resource, a log compiled from gives the
choices the database holds, a crashing candidate is dropped without Ray
retrying it, the measuring node killed mid-run loses no record, and the CLI's
`--ray ADDRESS` (with a target no node offers: the error says how to add one)."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import pytest
from tune_models import matmul_model, mlp_model
from tune_probes import abort_unless

from tinyc.cli import main
from tinyc.compiler import CompileOptions, compile_model
from tinyc.errors import TinycError
from tinyc.schedule import TuningDatabase
from tinyc.tune import TuneOptions, tune
from tinyc.tune.tasks import extract_tasks

pytestmark = pytest.mark.ray_full
HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
X86 = {"tinyc-target:x86": 1}


class TwoNodes:
    def __init__(self, ray):
        from ray.cluster_utils import Cluster

        self.ray = ray
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "object_store_memory": 100 * MB, "include_dashboard": False})
        self.timer = self.add_timer()
        self.connect()

    def connect(self) -> None:
        # the workers import the test probes (tune_probes) as the driver does
        self.ray.init(address=self.cluster.address, log_to_driver=False,
                      runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})

    def add_timer(self):
        node = self.cluster.add_node(num_cpus=1, resources=X86, object_store_memory=100 * MB)
        self.cluster.wait_for_nodes()
        return node

    @property
    def head_id(self) -> str:
        return self.cluster.head_node.node_id

    def shutdown(self) -> None:
        self.ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def nodes():
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_DISABLE_USAGE_STATS", "1")
    mp.delenv("RAY_ADDRESS", raising=False)
    ray = pytest.importorskip("ray", reason="ray (the `ray` extra) is not installed")
    cluster = TwoNodes(ray)
    yield cluster
    cluster.shutdown()  # no Ray process is left behind
    mp.undo()


def _pool(**kw):
    from tinyc.tune.ray_pool import RayPool

    return RayPool("x86", timeout_s=120, **kw)


def test_two_nodes_tune_timing_on_the_target_node(nodes, tmp_path):
    model, log = mlp_model(), tmp_path / "t.jsonl"
    pool = _pool(workers=2)
    summary = tune(model, "x86", TuneOptions(log, trials=6, workers=2, runner=pool))
    assert summary.new_trials == 6 and summary.failures == 0
    db = TuningDatabase.load(log)  # a valid log
    assert all(r.ok for key in db.keys() for r in db.of(key))
    assert len(pool.placements) == sum(len(db.of(k)) for k in db.keys())
    assert {timed for _, timed in pool.placements} == {nodes.timer.node_id}
    assert {built for built, _ in pool.placements} <= {nodes.head_id, nodes.timer.node_id}
    # the log applies as any: each layer compiles with the best record for its workload
    tasks = extract_tasks(model, "x86", CompileOptions(default_tuning=False))
    report = {r["node"]: r for r in compile_model(model, "x86",
                                                   CompileOptions(tuning_log=str(log))).report}
    for task in tasks:
        best = db.best(task.key, task.tunable.space)
        for node in task.nodes:
            assert report[node]["tuned"] is True and report[node]["schedule"] == best.config


def test_a_crashing_candidate_is_dropped_not_retried(nodes, tmp_path):
    model, log = matmul_model(), tmp_path / "t.jsonl"
    (task,) = extract_tasks(model, "x86", CompileOptions(default_tuning=False))
    probe = functools.partial(abort_unless, task.tunable.space.defaults())
    pool = _pool()
    summary = tune(model, "x86", TuneOptions(log, trials=3, runner=pool, probe=probe))
    assert summary.new_trials == 3 and summary.failures == 2 and pool.lost == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [bool(r["error"]) for r in records] == [False, True, True]
    assert all("crashed" in r["error"] for r in records[1:])


@pytest.mark.parametrize("max_retries", [3, 0])  # 0: the pool resubmits, not Ray
def test_killing_the_timing_node_mid_run_loses_no_record(nodes, tmp_path, max_retries):
    model, log = matmul_model(m=96, k=128, n=96), tmp_path / "t.jsonl"
    pool = _pool(workers=3, max_retries=max_retries)
    dead, in_flight = nodes.timer, []

    def kill_once(progress):  # with the second batch of candidates in flight
        if progress.done == 2 and nodes.timer is dead:
            in_flight.append(pool.in_flight)
            _wait_until_timing(nodes.ray)  # the node dies in the middle of a measurement
            nodes.cluster.remove_node(dead, allow_graceful=False)
            nodes.timer = nodes.add_timer()

    # 100 rounds: a measurement lasts long enough to be killed in the middle
    options = TuneOptions(log, trials=8, workers=3, runner=pool, repeats=100)
    summary = tune(model, "x86", options, on_progress=kill_once)
    assert nodes.timer is not dead
    assert summary.new_trials == 8 and summary.failures == 0
    db = TuningDatabase.load(log)
    (key,) = db.keys()
    assert len(db.tried(key)) == 8 and all(r.ok for r in db.of(key))
    assert len(log.read_text().splitlines()) == len(db.of(key))
    timed = [t for _, t in pool.placements]
    assert timed[:2] == [dead.node_id] * 2 and in_flight[0] >= 1
    # candidates submitted before the kill were timed again on the new node
    assert nodes.timer.node_id in timed[2:2 + in_flight[0]], (timed, in_flight)
    assert (pool.lost > 0) == (max_retries == 0)


def _wait_until_timing(ray, within_s: float = 60.0) -> None:
    """Until a measurement holds the timing node's resource."""
    end = time.monotonic() + within_s
    while ray.available_resources().get("tinyc-target:x86", 0) >= 1:
        assert time.monotonic() < end, "no measurement started"
        time.sleep(0.02)


def test_cli_tunes_on_the_cluster_and_names_a_missing_resource(nodes, tmp_path, capsys):
    model, log = tmp_path / "m.onnx", tmp_path / "t.jsonl"
    model.write_bytes(matmul_model().SerializeToString())
    address = nodes.cluster.address
    argv = ["tune", str(model), "--log", str(log), "--ray", address, "--json"]
    assert main(argv + ["--trials", "2", "--no-end-to-end"]) == 0
    assert json.loads(capsys.readouterr().out)["new_trials"] == 2
    assert main(argv + ["--target", "x86-avx2"]) != 0
    err = capsys.readouterr().err
    assert "'tinyc-target:x86-avx2'" in err and f"ray start --address {address}" in err


def test_no_timing_node_left_stops_the_run_and_the_next_resumes(nodes, tmp_path):
    model, log = matmul_model(), tmp_path / "t.jsonl"
    dead = nodes.timer

    def kill_for_good(progress):
        if progress.done == 1 and nodes.timer is dead:
            nodes.cluster.remove_node(dead, allow_graceful=False)
            nodes.timer = None

    with pytest.raises(TinycError, match="any longer.*run again to resume"):
        tune(model, "x86", TuneOptions(log, trials=4, runner=_pool(node_wait_s=3)),
             on_progress=kill_for_good)
    db = TuningDatabase.load(log)
    assert [len(db.of(key)) for key in db.keys()] == [1]  # the defaults, written at once
    nodes.timer = nodes.add_timer()
    summary = tune(model, "x86", TuneOptions(log, trials=4, runner=_pool()))
    assert summary.new_trials == 3 and summary.rows[0].trials == 4


def test_without_an_address_the_running_cluster_is_used(nodes):
    """As a `ray start` on this machine would be: Ray finds it; no new instance."""
    nodes.ray.shutdown()
    try:
        pool = _pool()
        alive = {n["NodeID"] for n in nodes.ray.nodes() if n["Alive"]}
        assert pool._owned and alive == {nodes.head_id, nodes.timer.node_id}  # the cluster's
        pool.close()
        assert not nodes.ray.is_initialized()
    finally:
        nodes.connect()
