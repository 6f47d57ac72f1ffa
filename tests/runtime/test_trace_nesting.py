"""Chrome-trace slices nest: on each thread, a slice ends within the one it
starts in (Perfetto draws the rest misnested). Checked on hand-made timelines
with the rounding that used to overrun, on a split run, and on a profiled
CPU-only session (profiling a split deployment is refused at compile time).
"""

from __future__ import annotations

import json

import numpy as np

import tinyc
from tinyc.runtime.timeline import Timeline
from tinyc.session_options import SessionOptions
from tinyc.testing.quant_models import quantized_model


def misnested(events: list[dict]) -> list[str]:
    """Slices that overrun the slice they start in, on their thread."""
    threads: dict[tuple, list[dict]] = {}
    for e in events:
        if e.get("ph") == "X":
            threads.setdefault((e["pid"], e["tid"]), []).append(e)
    bad = []
    for slices in threads.values():
        open_: list[dict] = []
        for e in sorted(slices, key=lambda e: (e["ts"], -e["dur"])):
            while open_ and open_[-1]["ts"] + open_[-1]["dur"] <= e["ts"]:
                open_.pop()
            if open_ and e["ts"] + e["dur"] > open_[-1]["ts"] + open_[-1]["dur"]:
                bad.append(f"{e['name']} overruns {open_[-1]['name']}")
            open_.append(e)
    return bad


def test_the_checker_finds_an_overrun():
    events = [{"ph": "X", "pid": 0, "tid": 0, "name": n, "ts": ts, "dur": dur}
              for n, ts, dur in (("region", 0.0, 10.0), ("layer", 4.0, 7.0))]
    assert misnested(events) == ["layer overruns region"]


def test_layers_ending_with_their_region_nest_despite_float_rounding():
    # the numbers of a resnet50 split run whose last layer overran by 1.4e-12 us
    t = Timeline()
    t.now = 9610.364500097903e-6
    hz = 1e9
    t.add("region 5", "accel_sim", "region", 907980 / hz)
    for name, start, end in (("n20", 0, 588500), ("n22", 588500, 907980)):
        t.add_inside(name, "accel_sim", start / hz, (end - start) / hz)
    trace = t.chrome_trace(["x86", "accel_sim"])
    assert misnested(trace["traceEvents"]) == []
    layers = [e for e in trace["traceEvents"] if e.get("cat") == "layer"]
    region = next(e for e in trace["traceEvents"] if e.get("cat") == "region")
    assert layers[-1]["ts"] + layers[-1]["dur"] == region["ts"] + region["dur"]


def test_an_overlapping_layer_is_clamped_and_its_overlap_kept():
    t = Timeline()
    t.add("region 0", "npu", "region", 10e-6)
    t.add_inside("a", "npu", 0.0, 6e-6)
    t.add_inside("b", "npu", 4e-6, 8e-6)  # starts inside a, ends past the region
    events = t.chrome_trace(["npu"])["traceEvents"]
    assert misnested(events) == []
    b = next(e for e in events if e["name"] == "b")
    assert (b["ts"], b["dur"], b["args"]["overlap_us"]) == (6.0, 4.0, 2.0)


def _mlp_feeds(session) -> dict:
    i = session.get_inputs()[0]
    return {i.name: np.random.default_rng(0).standard_normal(i.shape).astype(np.float32)}


def test_a_split_runs_trace_nests():
    session = tinyc.InferenceSession(quantized_model("mlp"), target="x86,accel_sim")
    session.run(None, _mlp_feeds(session))
    events = session.trace()["traceEvents"]
    assert {"region", "layer", "transfer"} <= {e.get("cat") for e in events}
    assert misnested(events) == []


def test_a_profiled_cpu_sessions_node_slices_nest_in_their_run(tmp_path):
    so = SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    session = tinyc.InferenceSession(quantized_model("mlp"), sess_options=so, target="x86")
    for _ in range(3):
        session.run(None, _mlp_feeds(session))
    events = json.load(open(session.end_profiling()))
    assert sum(e["cat"] == "Node" for e in events) >= 6  # per node, in each of 3 runs
    assert misnested(events) == []
