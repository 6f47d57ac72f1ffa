"""`tinyc compile MODEL -o FOLDER`: one artifact, with a progress display
for long compiles and --json for scripts."""

from __future__ import annotations

import argparse
import json
import time

from .cli_args import add_shape_args, checked_shapes
from .errors import TinycError


def add_compile_command(sub) -> None:
    c = sub.add_parser("compile", help="compile a model into an artifact folder")
    c.add_argument("model")
    c.add_argument("--target", default="x86")
    c.add_argument("-o", "--output", required=True, help="artifact folder to write")
    c.add_argument("--emit", default="", help="also write listings: llvm, asm (comma list)")
    c.add_argument("--profile", action="store_true",
                   help="count cycles per node (tinyc run --profile on the artifact reads them)")
    c.add_argument("--report", nargs="?", const="chosen", choices=["chosen", "all"],
                   help="print per node the kernels and intrinsic chosen; --report=all also "
                        "lists the intrinsics not used and why")
    c.add_argument("--tuning-log", metavar="FILE",
                   help="apply this tuning log's best record per layer (besides the default "
                        "database in the cache folder)")
    c.add_argument("--no-default-tuning", action="store_true",
                   help="do not apply the default tuning database")
    add_shape_args(c, hints=True)
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_compile)


def cmd_compile(args: argparse.Namespace) -> int:
    from .cli_progress import compile_progress
    from .compiler import CompileOptions, compile_model
    from .frontend.mapped import load_mapped
    from .model_meta import declared_input_shapes

    emit = tuple(e.strip() for e in args.emit.split(",") if e.strip())
    bad = [e for e in emit if e not in ("llvm", "asm")]
    if bad:
        raise TinycError(f"--emit takes llvm and/or asm, not {bad}")
    model = load_mapped(args.model)  # external data: mapped, not copied (frontend/mapped.py)
    shapes = checked_shapes(args.shape, declared_input_shapes(model.proto))
    opts = CompileOptions(emit=emit, profile=args.profile, shape_hints=dict(args.hint),
                          tuning_log=args.tuning_log,
                          default_tuning=not args.no_default_tuning)
    t0 = time.perf_counter()
    with compile_progress(args.model, opts.timings, enabled=not args.json):
        art = compile_model(model, args.target, opts, shapes or None)
    try:
        art.save(args.output)
    except OSError as e:
        raise TinycError(f"cannot write the artifact to {args.output}: {e.strerror or e}") from None
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps(_summary(args, art, seconds, opts.timings), indent=1))
        return 0
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in opts.timings.items())
    print(f"compiled {args.model} for {args.target} in {seconds:.2f}s ({stages}) -> {args.output}")
    print(f"  arena {art.meta['arena_bytes'] / 1e6:.2f} MB, "
          f"weights {len(art.weights) / 1e6:.2f} MB, "
          f"code {len(art.library) / 1e3:.1f} kB" if getattr(art, "library", None) else
          f"  arena {art.meta['arena_bytes'] / 1e3:.1f} kB, files: "
          f"{', '.join(sorted(getattr(art, 'files', {})))}")
    if "sizes" in art.meta:  # a cross target's runner, per part
        print("  bytes: " + ", ".join(f"{k} {v}" for k, v in art.meta["sizes"].items()))
    if "symbolic" in art.meta:
        _print_symbolic(art.meta)
    tunable = _tunable_layers(art)
    if tunable:
        tuned = [r["node"] for r in tunable if r["tuned"]]
        print(f"  tuned layers: {len(tuned)} of {len(tunable)} tunable"
              + (f" ({', '.join(tuned)})" if tuned and len(tuned) <= 8 else ""))
    if args.report:
        if "memory" in art.meta:  # a bare-metal build: flash and RAM, per part
            _print_memory(art.meta["memory"])
        print_report(art.report, rejections=args.report == "all")
    return 0


def _tunable_layers(art) -> list[dict]:
    """The host's tunable layers (the report's rows) and the accelerators' jobs
    (their programs' schedules), each with its node and whether it was tuned."""
    rows = [{"node": r["node"], "tuned": r["tuned"]} for r in art.report if "tuned" in r]
    for programs in getattr(art, "programs", {}).values():
        for program in programs.values():
            rows += [{"node": s["job"], "tuned": s["tuned"]}
                     for s in getattr(program, "schedules", ())]
    return rows


def _summary(args, art, seconds: float, timings: dict) -> dict:
    out = {"model": args.model, "target": args.target, "output": args.output,
           "seconds": round(seconds, 4), "timings": timings,
           "arena_bytes": art.meta.get("arena_bytes"),
           "weights_bytes": len(getattr(art, "weights", b"")),
           "code_bytes": len(getattr(art, "library", b"") or b""),
           "inputs": art.meta.get("inputs"), "outputs": art.meta.get("outputs"),
           "symbolic": art.meta.get("symbolic"),
           "tuned_layers": [r["node"] for r in _tunable_layers(art) if r["tuned"]]}
    if args.report:
        out["report"] = art.report
    return out


def _print_memory(memory: dict[str, dict[str, int]]) -> None:
    for kind, label in (("flash", "flash"), ("ram", "RAM")):
        parts = memory[kind]
        detail = ", ".join(f"{k.replace('io', 'I/O')} {v / 1024:.1f} KiB" for k, v in parts.items()
                           if k not in ("total", "limit"))
        print(f"  {label} {parts['total'] / 1024:.1f} KiB of {parts['limit'] / 1024:.0f} KiB: "
              f"{detail}")


def _print_symbolic(meta: dict) -> None:
    """One artifact for every size its guards admit: say which sizes those are."""
    sym = meta["symbolic"]
    print(f"  symbolic dims: {', '.join(sym['symbols'])} (arena {sym['arena_bytes']} bytes)")
    for t in meta["inputs"] + meta["outputs"]:
        print(f"    {t['name']}: {t['dtype']}{t['shape']}")
    print("  guards: " + ("; ".join(sym["guards"]) if sym["guards"] else
                          "none (every size is served)"))
    for u in sym.get("unbacked") or ():  # sizes a kernel computes from the data
        print(f"  data-dependent size {u['name']}: at most {u['bound']}")


def print_report(report: list[dict], rejections: bool = False) -> None:
    for r in report:
        how = f"view of {r['view_of']}" if r["view_of"] else ", ".join(r["kernels"])
        note = f"  [{r['note']}]" if r["note"] else ""
        print(f"  {r['node']:<32} {r['op']:<20} {how}{note}")
        if "variants" in r:
            print(f"      where {r['variants']['when']}; else: {r['variants']['else']}")
        for name, why in r.get("rejected", ()) if rejections else ():
            print(f"      not {name}: {why}")
