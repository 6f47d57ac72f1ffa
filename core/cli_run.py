"""`tinyc run MODEL`: run an .onnx model (compiled on the way) or an artifact
folder once, print the outputs, and optionally where the time went (--profile)
and how far they are from onnxruntime (--check); --json for scripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile

from .cli_args import add_shape_args, checked_shapes
from .errors import InputError, TinycError


def add_run_command(sub) -> None:
    r = sub.add_parser("run", help="run a model or a compiled artifact folder")
    r.add_argument("model", help="an .onnx file or an artifact folder")
    r.add_argument("--target", default="x86")
    r.add_argument("--inputs", help=".npz with one array per input (default: seeded random)")
    r.add_argument("--outputs", help=".npz to write the outputs to")
    r.add_argument("--profile", action="store_true",
                   help="compile with cycle counters and print where the time went")
    r.add_argument("--check", action="store_true",
                   help="compare with onnxruntime (or onnx.reference) and report the error")
    add_shape_args(r, hints=False)
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    if not os.path.exists(args.model):
        raise TinycError(f"{args.model}: no such model file or artifact folder")
    model = _open(args)
    inputs, outputs = model.get_inputs(), model.get_outputs()
    feeds = _read_feeds(args.inputs, inputs, dict(args.shape), quiet=args.json)
    t0 = time.perf_counter()
    results = model.run(None, feeds)
    ms = (time.perf_counter() - t0) * 1e3
    result = {"model": args.model, "ms": round(ms, 4),
              "outputs": [_stats(o.name, v) for o, v in zip(outputs, results, strict=True)]}
    if args.profile:
        result["profile"] = _profile(model)
    if args.outputs:
        try:
            np.savez(args.outputs, **{o.name: v for o, v in zip(outputs, results, strict=True)})
        except OSError as e:
            raise TinycError(f"cannot write {args.outputs}: {e.strerror or e}") from None
    status = 0
    if args.check:
        result["check"] = _check(args.model, feeds, results, [o.name for o in outputs])
        status = 0 if result["check"]["pass"] else 3
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print(result)
    return status


def _open(args: argparse.Namespace):
    if os.path.isdir(args.model):
        from .runtime import load

        if not os.path.isfile(os.path.join(args.model, "model.json")):
            raise TinycError(f"{args.model} is a folder but not an artifact (no model.json); "
                             f"give an .onnx model or a folder written by tinyc compile")
        model = load(args.model)
        if args.profile and not (getattr(model, "meta", {}).get("profile_nodes")
                                 or hasattr(model, "trace")):
            raise TinycError(f"{args.model} was compiled without profiling; compile it with "
                             f"`tinyc compile --profile`, or run the .onnx model with --profile")
        return model
    from .cli_progress import compile_progress
    from .compiler import CompileOptions
    from .frontend.load import load_model
    from .model_meta import declared_input_shapes
    from .session import InferenceSession

    checked_shapes(args.shape, declared_input_shapes(load_model(args.model)))
    opts = CompileOptions(profile=args.profile)
    with compile_progress(args.model, opts.timings, enabled=not args.json):
        return InferenceSession(args.model, target=args.target, options=opts)


def _profile(model) -> dict:
    """Per node shares (single target) or the run's timeline (split)."""
    if hasattr(model, "profile") and (getattr(model, "meta", None) is None
                                      or model.meta.get("profile_nodes")):
        try:
            return {"nodes": [{"node": n, "op": op, "share": s} for n, op, s in model.profile()]}
        except TinycError:
            pass  # a split session: its timeline instead
    events = [e for e in model.trace()["traceEvents"] if e["ph"] == "X"]
    return {"timeline": [{"name": e["name"], "kind": e["cat"], "ms": e["dur"] / 1e3}
                         for e in events]}


def _stats(name: str, value) -> dict:
    empty = value.size == 0
    return {"name": name, "dtype": str(value.dtype), "shape": list(value.shape),
            "min": None if empty else float(value.min()),
            "max": None if empty else float(value.max()),
            "mean": None if empty else float(value.mean())}


def _print(result: dict) -> None:
    for o in result["outputs"]:
        print(f"{o['name']}: {o['dtype']}{o['shape']} min {o['min']:.5g} max {o['max']:.5g} "
              f"mean {o['mean']:.5g}" if o["min"] is not None else
              f"{o['name']}: {o['dtype']}{o['shape']} (empty)")
    ms = result["ms"]
    print(f"ran in {ms:.2f} ms")
    profile = result.get("profile", {})
    if "nodes" in profile:
        _print_nodes(profile["nodes"], ms)
    for e in profile.get("timeline", ()):
        print(f"  {e['name']:<40} {e['kind']:<10} {e['ms']:8.3f} ms")
    for c in result.get("check", {}).get("outputs", ()):
        print(f"check {c['name']} against {result['check']['oracle']}: max error "
              f"{c['error']:.2e} of the output range")
    if "check" in result:
        print("check: PASS" if result["check"]["pass"] else
              "check: FAIL (tolerance 1e-3 of the output range)")


def _print_nodes(rows: list[dict], ms: float, top: int = 15) -> None:
    print(f"where the time went (share of {ms:.2f} ms):")
    for r in rows[:top]:
        print(f"  {r['node']:<32} {r['op']:<20} {100 * r['share']:5.1f}%  "
              f"{r['share'] * ms:7.3f} ms")
    if len(rows) > top:
        rest = sum(r["share"] for r in rows[top:])
        print(f"  {len(rows) - top} more nodes{'':<22} {100 * rest:5.1f}%")


def _read_feeds(path: str | None, inputs, shapes: dict, quiet: bool) -> dict:
    import numpy as np

    if path is None:
        rng = np.random.default_rng(0)
        print("no --inputs given: using seeded random inputs", file=sys.stderr if quiet
              else sys.stdout)
        return {i.name: _random(rng, i, shapes.get(i.name)) for i in inputs}
    if not os.path.isfile(path):
        raise InputError(f"--inputs {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise InputError(f"--inputs {path}: not an .npz file (numpy.savez writes one, with an "
                         f"array per input name)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputError(f"--inputs {path}: a .npy array; give an .npz with one array "
                                 f"per input name")
            return {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"--inputs {path}: not a readable .npz file ({e})") from None


def _random(rng, info, shape):
    import numpy as np

    shape = shape or info.shape
    if not all(isinstance(d, int) for d in shape):
        raise InputError(f"input '{info.name}' has symbolic dims {info.shape}: give its shape "
                         f"with --shape {info.name}=D0,D1,... or feed it with --inputs")
    dtype = np.dtype(info.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 10, shape).astype(dtype)


def _check(model: str, feeds: dict, results: list, names: list[str]) -> dict:
    import numpy as np

    from .testing.reference import reference_outputs

    if os.path.isdir(model):
        raise TinycError("--check needs the .onnx model, not an artifact folder")
    expected, oracle = reference_outputs(model, feeds, names)
    rows = []
    for name, got, want in zip(names, results, expected, strict=True):
        scale = max(float(np.abs(want).max()), 1e-6) if want.size else 1.0
        err = float(np.abs(got.astype(np.float64) - want).max()) / scale if want.size else 0.0
        rows.append({"name": name, "error": err})
    worst = max((r["error"] for r in rows), default=0.0)
    return {"oracle": oracle, "outputs": rows, "worst": worst, "pass": worst <= 1e-3}
