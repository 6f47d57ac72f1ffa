"""`tinyc explain MODEL --target x86,accel_sim`: which device runs each node, and why.

Prints the partition (regions in run order, every CPU fallback counted by
reason, a line per node); --json writes it per node, --svg/--png draw the
graph with Graphviz (regions as device-coloured clusters, chains collapsed,
partition/drawing.py), --dot writes the Graphviz source itself, --trace
compiles the model, runs it once and writes the run's timeline (host regions,
simulated device time, transfers) as a Chrome trace (open in chrome://tracing
or ui.perfetto.dev).
"""

from __future__ import annotations

import argparse
import json


def add_explain_command(sub) -> None:
    e = sub.add_parser("explain", help="show how a model is split across devices, and why")
    e.add_argument("model")
    e.add_argument("--target", default="x86,accel_sim",
                   help="a comma list: one CPU and accelerators (default x86,accel_sim)")
    e.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the placement of every node as JSON (to stdout, alone, "
                        "without FILE)")
    e.add_argument("--svg", metavar="FILE",
                   help="draw the partitioned graph as SVG (needs Graphviz's dot)")
    e.add_argument("--png", metavar="FILE",
                   help="draw the partitioned graph as PNG (needs Graphviz's dot)")
    e.add_argument("--dot", metavar="FILE", help="write the drawing's Graphviz source")
    e.add_argument("--trace", metavar="FILE",
                   help="run once (seeded random inputs) and write a Chrome-trace timeline")
    e.add_argument("--pin", action="append", default=[], metavar="NODE=DEVICE",
                   help="run NODE on DEVICE (repeatable)")
    e.add_argument("--avoid", action="append", default=[], metavar="DEVICE=NODE[,NODE]",
                   help="keep DEVICE off these nodes (repeatable)")
    e.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from .compiler import CompileOptions, partition_model
    from .frontend.load import load_model
    from .partition.drawing import partition_dot
    from .partition.render import render
    from .target import resolve_devices

    opts = CompileOptions(pin=_pairs(args.pin), avoid=_lists(args.avoid))
    proto = load_model(args.model)
    graph, partition = partition_model(proto, resolve_devices(args.target), opts)
    if args.json == "-":  # for scripts: the JSON and nothing else on stdout
        print(json.dumps(partition.to_json(), indent=1))
    else:
        print(partition.text())
    if args.json and args.json != "-":
        _write(args.json, json.dumps(partition.to_json(), indent=1))
    dot_text = partition_dot(graph, partition) if args.svg or args.png or args.dot else ""
    if args.dot:
        _write(args.dot, dot_text)
    for fmt, path in (("svg", args.svg), ("png", args.png)):
        if path:
            _write(path, render(dot_text, fmt))
    if args.trace:
        _write(args.trace, json.dumps(_run_trace(proto, args.target, opts)))
    return 0


def _run_trace(proto, target: str, opts) -> dict:
    import numpy as np

    from .session import InferenceSession

    session = InferenceSession(proto, target, opts)
    rng = np.random.default_rng(0)
    feeds = {i.name: _random(rng, i.shape, i.dtype) for i in session.get_inputs()}
    session.run(None, feeds)
    trace = session.trace()
    runs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    moved = sum(e["args"].get("bytes", 0) for e in runs if e["cat"] == "transfer")
    end_us = max((e["ts"] + e["dur"] for e in runs), default=0.0)
    print(f"\nran once: {end_us / 1e3:.3f} ms on the timeline, {moved / 1024:.1f} KiB moved "
          "between host and devices")
    for e in runs:
        if e["cat"] == "region" and "utilization" in e["args"]:
            a = e["args"]
            print(f"  {e['name']:<10} {a['cycles']:>10} cycles  MAC utilization "
                  f"{100 * a['utilization']:5.1f}%  compute {a['compute_cycles']}, DMA "
                  f"{a['dma_cycles']}, overlap {a['overlap_cycles']}")
    return trace


def _random(rng, shape, dtype):
    import numpy as np

    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt) if dt.kind in "iu" else None
    lo, hi = (max(info.min, -64), min(info.max, 64)) if info else (0, 2)
    return rng.integers(lo, hi, shape).astype(dt)


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        node, _, device = item.rpartition("=")
        out[node] = device
    return out


def _lists(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        device, _, nodes = item.partition("=")
        out.setdefault(device, []).extend(n for n in nodes.split(",") if n)
    return out


def _write(path: str, data: str | bytes) -> None:
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    print(f"wrote {path}")
