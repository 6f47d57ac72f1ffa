"""What a backend plugin hands tinyc: how to turn a spec into a code generator target."""

from __future__ import annotations

from typing import Protocol

from ..codegen.machine import CpuTarget
from .spec import TargetSpec


class Backend(Protocol):
    name: str  # referenced by specs' `backend:` field

    def cpu_target(self, spec: TargetSpec) -> CpuTarget:
        """The LLVM triple, cpu, features and vector width for this spec."""
        ...

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        """None when tinyc can compile and run for this spec here; else why not."""
        ...
