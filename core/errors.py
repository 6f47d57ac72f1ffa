"""Errors tinyc raises for bad input. Each says what was wrong and where."""

from __future__ import annotations


class TinycError(Exception):
    """Base of every error tinyc raises on purpose; the CLI prints it without a traceback."""


class ModelError(TinycError):
    """The ONNX model is unreadable, malformed or inconsistent."""


class UnsupportedOpsError(TinycError):
    """The model uses ops tinyc cannot compile; every one is listed at once."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        # (op, node name, reason) per unsupported node
        self.problems = problems
        lines = [f"  {op} (node '{name}'): {why}" for op, name, why in problems]
        ops = sorted({p[0] for p in problems})
        super().__init__(
            f"{len(problems)} node(s) use unsupported ops {ops}:\n" + "\n".join(lines)
        )


class InputError(TinycError, ValueError):
    """A feed given to run() has the wrong name, shape or dtype, or holds a value the
    model refuses (e.g. an index out of range). A ValueError too, as numpy and
    onnxruntime callers expect for bad arguments."""


class ModelFolderError(TinycError):
    """A model folder `tinyc generate` cannot use: no model, config or tokenizer
    file, or a config that names inputs or outputs the model does not have."""


class TargetError(TinycError):
    """An unknown target, a target that cannot be built here, or a broken plugin."""


class SpecError(TinycError):
    """A target spec file is invalid; the message names file, line and field."""


class ArtifactError(TinycError, ValueError):
    """A saved artifact cannot run here: built for another architecture, for CPU
    features this machine lacks, or in a format this tinyc does not read.
    (Also a ValueError, which the loader raised for bad artifacts before.)"""


class NotLowerable(Exception):  # noqa: N818  (a signal between stages, not a user error)
    """Raised by a lowering (or a helper reading a node's constants, e.g. its
    quantization parameters) for a node it cannot handle; the message says why."""
