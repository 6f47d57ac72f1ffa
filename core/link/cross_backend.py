"""A reusable backend for CPUs tinyc cross-compiles to (aarch64, riscv64, Cortex-M, wasm32).

Code comes from tinyc's LLVM path for the spec's fixed triple, cpu and
features; a subclass says which architectures it builds and packages the
object into an artifact (`package`), and registers a runtime device that runs
it (an emulator). See plugins/arm, plugins/riscv, plugins/wasm.
"""

from __future__ import annotations

from ..errors import TargetError
from ..target.backend import CompiledModel, Package
from ..target.cpu import arch_of
from ..target.machine import CpuTarget
from ..target.spec import TargetSpec
from .zig import zig_missing_reason


class CrossCpuBackend:
    name = "cross"
    kind = "cpu"
    arches: tuple[str, ...] = ()  # triple architectures this backend builds, e.g. ("aarch64",)

    def cpu_target(self, spec: TargetSpec) -> CpuTarget:
        if "host" in (spec.cpu, spec.features, spec.vector_bits) or not spec.triple:
            raise TargetError(f"target '{spec.name}' is cross-compiled: give its triple, cpu, "
                              "features and vector_bits explicitly (not 'host')")
        return CpuTarget(spec.triple, spec.cpu, ",".join(spec.features), int(spec.vector_bits))

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        arch = arch_of(spec.triple) if spec.triple else "(no triple)"
        if arch not in self.arches:
            return f"backend {self.name} builds {', '.join(self.arches)}, not {arch}"
        return self.toolchain_missing_reason()

    def toolchain_missing_reason(self) -> str | None:
        """What is missing to link artifacts (running them is the runtime device's job)."""
        return zig_missing_reason()

    def package(self, model: CompiledModel) -> Package:
        raise NotImplementedError(f"backend {self.name} does not package artifacts")
