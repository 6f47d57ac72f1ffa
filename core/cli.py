# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: completion for `tinyc` when installed)
"""The `tinyc` command line: targets, new-backend, compile, run, explain, cache,
generate.

Every user error (a missing or unreadable file, a folder that cannot be
written, a bad target, shape or input file) prints one `tinyc: error:` line
and exits 1 (2 for usage errors, as argparse does); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import SpecError, TinycError

# the import names of the `compile` extra's distributions (pyproject.toml)
COMPILE_EXTRA = ("onnx", "llvmlite", "pluggy", "yaml", "jsonschema")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    _enable_completion(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpecError as e:
        return _fail(e, 2)
    except TinycError as e:
        return _fail(e, 1)
    except OSError as e:  # a file or folder the user named: missing, unreadable, unwritable
        if isinstance(e, BrokenPipeError):  # `tinyc targets | head`: the reader left early
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
            return 0
        where = f"{e.filename}: " if e.filename else ""
        return _fail(f"{where}{e.strerror or e}", 1)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in COMPILE_EXTRA:
            raise
        # a runtime-only install (pip install tinyc) runs saved artifacts; the rest
        # needs the compiler's dependencies (docs/packaging.md)
        return _fail(f"'{args.command}' needs the compiler ({e.name} is not installed): "
                     f"pip install 'tinyc[compile]'", 1)
    except KeyboardInterrupt:
        print("tinyc: interrupted", file=sys.stderr)
        return 130


def _fail(message, code: int) -> int:
    print(f"tinyc: error: {message}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    """Usage errors as `tinyc: error: <command>: ...`, the line every error has."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("tinyc").strip()
        self.exit(2, f"tinyc: error: {command + ': ' if command else ''}{message}\n")


def _enable_completion(parser: argparse.ArgumentParser) -> None:
    """Shell completion when argcomplete is installed (an optional extra):
    eval "$(register-python-argcomplete tinyc)"."""
    try:
        import argcomplete
    except ModuleNotFoundError:
        return
    argcomplete.autocomplete(parser)


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .cli_cache import add_cache_command
    from .cli_compile import add_compile_command
    from .cli_generate import add_generate_command
    from .cli_run import add_run_command
    from .explain import add_explain_command

    p = _Parser(prog="tinyc", description="ONNX in, native code out.")
    p.add_argument("--version", action="version", version=f"tinyc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("targets", help="list targets and the plugins that provide them")
    t.add_argument("--intrinsics", action="store_true", help="also list the intrinsic sets")
    t.add_argument("--json", action="store_true", help="print the listing as JSON")
    t.set_defaults(func=_cmd_targets)

    n = sub.add_parser("new-backend", help="scaffold a pip-installable backend plugin")
    n.add_argument("name", help="the backend's name, e.g. foo (-> tinyc-backend-foo)")
    n.add_argument("-o", "--output", default=".", help="folder to create it in")
    n.add_argument("--kind", choices=("cpu", "accelerator"), default="cpu",
                   help="cpu: tinyc's LLVM code generator for your CPU; accelerator: an int8 "
                        "GEMM-array NPU on tinyc's accelerator kit (YAML + a few hooks)")
    n.add_argument("--extends", default="x86", help="the target spec to start from (cpu)")
    n.set_defaults(func=_cmd_new_backend)

    add_compile_command(sub)
    add_run_command(sub)
    add_explain_command(sub)
    add_cache_command(sub)
    add_generate_command(sub)
    return p


def _cmd_targets(args: argparse.Namespace) -> int:
    from .target import registry
    from .target.listing import format_table, intrinsic_lines, plugin_lines, target_rows

    reg = registry()
    rows = target_rows(reg)
    if args.json:
        keys = ("target", "backend", "plugin", "spec_from", "status")
        listing = {"targets": [dict(zip(keys, r, strict=True)) for r in rows[1:]],
                   "plugins": [line.strip() for line in plugin_lines(reg)],
                   "problems": [str(p) for p in reg.problems]}
        if args.intrinsics:
            listing["intrinsic_sets"] = intrinsic_lines(reg)
        print(json.dumps(listing, indent=1))
        return 0
    for line in format_table(rows):
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
    from .target import resolve_spec_by_name

    if args.kind == "cpu":  # an unknown spec: an error now, not a broken plugin
        resolve_spec_by_name(args.extends)
    root = scaffold_backend(args.name, args.output, extends=args.extends, kind=args.kind)
    print(f"wrote {root}\nnext:\n  pip install -e {root}\n  tinyc targets\n"
          f"  cd {root} && pytest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
