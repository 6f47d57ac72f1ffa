"""What a backend plugin hands tinyc: a code generator for the targets naming it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .machine import CpuTarget
from .spec import TargetSpec

BACKEND_KINDS = ("cpu", "accelerator")


@runtime_checkable
class Backend(Protocol):
    """Register one with the `tinyc_register_backends` hook.

    `tinyc.target.LlvmCpuBackend` implements all of it for CPUs whose code runs in
    this process; `tinyc.target.PendingBackend` for targets not buildable yet.
    """

    name: str  # what target specs name in their `backend:` field
    kind: str  # "cpu": LLVM code for the spec's triple; "accelerator": its own commands

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        """None when tinyc can compile and run for `spec` here; else what is missing."""
        ...

    def cpu_target(self, spec: TargetSpec) -> CpuTarget:
        """The LLVM triple, cpu, features and vector width for `spec` (cpu kind only)."""
        ...


@dataclass(frozen=True)
class CompiledModel:
    """What a Packager turns into artifact files: the code and the facts about it."""

    obj: bytes  # relocatable object for the spec's triple: tinyc_run and its kernels
    weights: bytes  # the constants tinyc_run reads through its `weights` argument
    meta: dict  # the artifact's model.json so far: arena_bytes, inputs, outputs, target...
    cpu: CpuTarget
    spec: TargetSpec


@dataclass
class Package:
    """A Packager's result: files of the artifact folder and facts for model.json."""

    files: dict[str, bytes]  # file name -> content, e.g. libmodel.a, model.h, model.elf
    meta: dict = field(default_factory=dict)  # merged into model.json, e.g. how to run it
    # the file of `files` that holds the weights (a wasm data segment), when the
    # artifact needs no weights.bin beside it: the weights then ship once
    weights_in: str | None = None


@runtime_checkable
class Packager(Protocol):
    """Optional part of a Backend: how a compiled model becomes an artifact.

    Without it, tinyc links the object into a shared library (model.so) that
    runs in this process. With it, the backend decides the files (a static
    library and header, a wasm module, a runner program for an emulator) and
    a runtime device it registers runs them (tinyc_register_runtime_devices).
    """

    def package(self, model: CompiledModel) -> Package:
        ...


def runs_symbolic(backend: object, cpu: object = None) -> bool:
    """Does a packaging backend run artifacts with symbolic dims on this CPU?
    Such a backend has `symbolic_shapes` True (or a method of the CpuTarget
    saying so), keeps tinyc_sizes and tinyc_guards beside tinyc_run (model.meta
    has "symbolic") and passes each run's dims array as tinyc_run's fifth
    argument (codegen/symbolic_ir.py)."""
    flag = getattr(backend, "symbolic_shapes", False)
    return bool(flag(cpu) if callable(flag) else flag)


def check_backend(obj: object) -> None:
    """Raise TypeError naming what a registered object lacks to be a Backend."""
    missing = [a for a in ("name", "kind", "not_buildable_reason", "cpu_target")
               if not hasattr(obj, a)]
    if missing:
        raise TypeError(f"register() takes a tinyc.target.Backend; {obj!r} lacks "
                        f"{', '.join(missing)}")
    if obj.kind not in BACKEND_KINDS:  # type: ignore[attr-defined]
        raise TypeError(f"backend {obj.name!r} has kind {obj.kind!r}; expected one of "  # type: ignore[attr-defined]
                        f"{', '.join(BACKEND_KINDS)}")
