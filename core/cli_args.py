"""Argument types shared by the subcommands: --shape NAME=1,128 and
--hint SYMBOL=8. A malformed value is an argparse error (exit 2)."""

from __future__ import annotations

import argparse

from .errors import InputError


def shape_arg(text: str) -> tuple[str, list[int]]:
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"'{text}': write NAME=D0,D1,... e.g. x=1,128")
    try:
        shape = [int(d) for d in dims.split(",")] if dims.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': dimensions must be integers") from None
    if any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"'{text}': dimensions must be at least 1")
    return name, shape


def hint_arg(text: str) -> tuple[str, int]:
    """SIZE may be 0: an LLM's past_sequence_length compiled at 0 serves the
    prompt's step with an empty KV cache (a dim compiled at 1 or more is >= 1)."""
    name, sep, size = text.rpartition("=")
    if not sep or not name or not size.strip().isdigit():
        raise argparse.ArgumentTypeError(f"'{text}': write SYMBOL=SIZE, e.g. batch=8")
    return name, int(size)


def add_shape_args(p: argparse.ArgumentParser, hints: bool) -> None:
    p.add_argument("--shape", action="append", default=[], type=shape_arg, metavar="NAME=D0,D1",
                   help="a concrete shape for input NAME (repeatable); pins its symbolic dims")
    if hints:
        p.add_argument("--hint", action="append", default=[], type=hint_arg,
                       metavar="SYMBOL=SIZE",
                       help="the size a symbolic dim's code is tuned around; the artifact "
                            "still serves every size its guards admit; 0 lets the dim be 0 "
                            "(an empty KV cache) (repeatable)")


def checked_shapes(pairs: list[tuple[str, list[int]]], declared: dict[str, list]
                   ) -> dict[str, list[int]]:
    """--shape values, checked against the model's inputs (name, rank, fixed dims)."""
    shapes = dict(pairs)
    for name, shape in shapes.items():
        if name not in declared:
            raise InputError(f"--shape {name}=...: the model has no input '{name}'; its inputs "
                             f"are {sorted(declared)}")
        want = declared[name]
        if len(shape) != len(want) or any(isinstance(w, int) and w != d
                                           for w, d in zip(want, shape, strict=True)):
            raise InputError(f"--shape {name}={','.join(map(str, shape))} does not fit the "
                             f"declared shape {want}")
    return shapes
