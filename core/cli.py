"""The `tinyc` command line: targets, new-backend, compile, run, explain."""

from __future__ import annotations

import argparse
import os
import sys
import time

from .errors import SpecError, TinycError

# the import names of the `compile` extra's distributions (pyproject.toml)
COMPILE_EXTRA = ("onnx", "llvmlite", "pluggy", "yaml", "jsonschema")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpecError as e:
        print(f"tinyc: error: {e}", file=sys.stderr)
        return 2
    except TinycError as e:
        print(f"tinyc: error: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in COMPILE_EXTRA:
            raise
        # a runtime-only install (pip install tinyc) runs saved artifacts; the rest
        # needs the compiler's dependencies (docs/packaging.md)
        print(f"tinyc: error: '{args.command}' needs the compiler ({e.name} is not "
              f"installed): pip install 'tinyc[compile]'", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `tinyc targets | head`: the reader left early; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
        return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyc", description="ONNX in, native code out.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("targets", help="list targets and the plugins that provide them")
    t.add_argument("--intrinsics", action="store_true", help="also list the intrinsic sets")
    t.set_defaults(func=_cmd_targets)

    n = sub.add_parser("new-backend", help="scaffold a pip-installable backend plugin")
    n.add_argument("name", help="the backend's name, e.g. foo (-> tinyc-backend-foo)")
    n.add_argument("-o", "--output", default=".", help="folder to create it in")
    n.add_argument("--extends", default="x86", help="the target spec to start from")
    n.set_defaults(func=_cmd_new_backend)

    c = sub.add_parser("compile", help="compile a model into an artifact folder")
    c.add_argument("model")
    c.add_argument("--target", default="x86")
    c.add_argument("-o", "--output", required=True, help="artifact folder to write")
    c.add_argument("--emit", default="", help="also write listings: llvm, asm (comma list)")
    c.add_argument("--report", nargs="?", const="chosen", choices=["chosen", "all"],
                   help="print per node the kernels and intrinsic chosen; --report=all also "
                        "lists the intrinsics not used and why")
    c.set_defaults(func=_cmd_compile)

    r = sub.add_parser("run", help="run a model or a compiled artifact folder")
    r.add_argument("model", help="an .onnx file or an artifact folder")
    r.add_argument("--target", default="x86")
    r.add_argument("--inputs", help=".npz with one array per input (default: seeded random)")
    r.add_argument("--outputs", help=".npz to write the outputs to")
    r.add_argument("--profile", action="store_true",
                   help="compile with cycle counters and print where the time went")
    r.add_argument("--check", action="store_true",
                   help="compare with onnxruntime (or onnx.reference) and report the error")
    r.set_defaults(func=_cmd_run)

    from .explain import add_explain_command

    add_explain_command(sub)
    return p


def _cmd_targets(args: argparse.Namespace) -> int:
    from .target import registry
    from .target.listing import format_table, intrinsic_lines, plugin_lines, target_rows

    reg = registry()
    for line in format_table(target_rows(reg)):
        print(line)
    print("\nplugins:")
    for line in plugin_lines(reg):
        print(line)
    if reg.problems:
        print("\nproblems:")
        for problem in reg.problems:
            print(f"  {problem}")
    if args.intrinsics:
        print("\nintrinsic sets:")
        for line in intrinsic_lines(reg):
            print(f"  {line}")
    return 0


def _cmd_new_backend(args: argparse.Namespace) -> int:
    from .scaffold import scaffold_backend

    root = scaffold_backend(args.name, args.output, extends=args.extends)
    print(f"wrote {root}\nnext:\n  pip install -e {root}\n  tinyc targets\n"
          f"  cd {root} && pytest")
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from .compiler import CompileOptions, compile_model

    emit = tuple(e.strip() for e in args.emit.split(",") if e.strip())
    bad = [e for e in emit if e not in ("llvm", "asm")]
    if bad:
        raise TinycError(f"--emit takes llvm and/or asm, not {bad}")
    opts = CompileOptions(emit=emit)
    t0 = time.perf_counter()
    art = compile_model(args.model, args.target, opts)
    art.save(args.output)
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in opts.timings.items())
    print(f"compiled {args.model} for {args.target} in {time.perf_counter() - t0:.2f}s "
          f"({stages}) -> {args.output}")
    print(f"  arena {art.meta['arena_bytes'] / 1e6:.2f} MB, "
          f"weights {len(art.weights) / 1e6:.2f} MB, "
          f"code {len(art.library) / 1e3:.1f} kB" if art.library else
          f"  arena {art.meta['arena_bytes'] / 1e3:.1f} kB, files: {', '.join(sorted(art.files))}")
    if "sizes" in art.meta:  # a cross target's runner, per part
        print("  bytes: " + ", ".join(f"{k} {v}" for k, v in art.meta["sizes"].items()))
    if args.report:
        if "memory" in art.meta:  # a bare-metal build: flash and RAM, per part
            _print_memory(art.meta["memory"])
        _print_report(art.report, rejections=args.report == "all")
    return 0


def _print_memory(memory: dict[str, dict[str, int]]) -> None:
    for kind, label in (("flash", "flash"), ("ram", "RAM")):
        parts = memory[kind]
        detail = ", ".join(f"{k.replace('io', 'I/O')} {v / 1024:.1f} KiB" for k, v in parts.items()
                           if k not in ("total", "limit"))
        print(f"  {label} {parts['total'] / 1024:.1f} KiB of {parts['limit'] / 1024:.0f} KiB: "
              f"{detail}")


def _print_report(report: list[dict], rejections: bool = False) -> None:
    for r in report:
        how = f"view of {r['view_of']}" if r["view_of"] else ", ".join(r["kernels"])
        note = f"  [{r['note']}]" if r["note"] else ""
        print(f"  {r['node']:<32} {r['op']:<20} {how}{note}")
        for name, why in r.get("rejected", ()) if rejections else ():
            print(f"      not {name}: {why}")


def _cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    if os.path.isdir(args.model):
        from .runtime import load

        model = load(args.model)
    else:
        from .compiler import CompileOptions
        from .session import InferenceSession

        model = InferenceSession(args.model, args.target, CompileOptions(profile=args.profile))
    inputs, outputs = model.get_inputs(), model.get_outputs()
    feeds = _read_feeds(args.inputs, inputs)
    t0 = time.perf_counter()
    results = model.run(None, feeds)
    ms = (time.perf_counter() - t0) * 1e3
    for info, value in zip(outputs, results, strict=True):
        print(f"{info.name}: {value.dtype}{list(value.shape)} "
              f"min {value.min():.5g} max {value.max():.5g} mean {value.mean():.5g}")
    print(f"ran in {ms:.2f} ms")
    if args.profile:
        _print_profile(model.profile(), ms)
    if args.outputs:
        np.savez(args.outputs, **{o.name: v for o, v in zip(outputs, results, strict=True)})
    if args.check:
        return _check(args.model, feeds, results, [o.name for o in outputs])
    return 0


def _print_profile(rows: list[tuple[str, str, float]], ms: float, top: int = 15) -> None:
    print(f"where the time went (share of {ms:.2f} ms):")
    for node, op, share in rows[:top]:
        print(f"  {node:<32} {op:<20} {100 * share:5.1f}%  {share * ms:7.3f} ms")
    if len(rows) > top:
        rest = sum(r[2] for r in rows[top:])
        print(f"  {len(rows) - top} more nodes{'':<22} {100 * rest:5.1f}%")


def _read_feeds(path: str | None, inputs) -> dict:
    import numpy as np

    if path is None:
        rng = np.random.default_rng(0)
        print("no --inputs given: using seeded random inputs")
        return {i.name: _random(rng, i) for i in inputs}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _random(rng, info):
    import numpy as np

    dtype = np.dtype(info.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(info.shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, info.shape).astype(dtype)
    return rng.integers(0, 10, info.shape).astype(dtype)


def _check(model: str, feeds: dict, results: list, names: list[str]) -> int:
    import numpy as np

    from .testing.reference import reference_outputs

    if os.path.isdir(model):
        raise TinycError("--check needs the .onnx model, not an artifact folder")
    expected, oracle = reference_outputs(model, feeds, names)
    worst = 0.0
    for name, got, want in zip(names, results, expected, strict=True):
        scale = max(float(np.abs(want).max()), 1e-6) if want.size else 1.0
        err = float(np.abs(got.astype(np.float64) - want).max()) / scale if want.size else 0.0
        worst = max(worst, err)
        print(f"check {name} against {oracle}: max error {err:.2e} of the output range")
    ok = worst <= 1e-3
    print("check: PASS" if ok else "check: FAIL (tolerance 1e-3 of the output range)")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
