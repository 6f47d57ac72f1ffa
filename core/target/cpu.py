"""Reusable backends: a CPU reached through LLVM, and a placeholder for later ones.

A plugin for a CPU that runs tinyc's code in this process is a subclass that sets
`name` (and `runs_on` when the host is not x86-64); see plugins/x86.
"""

from __future__ import annotations

from ..errors import TargetError
from .machine import CpuTarget, host_cpu, host_features, host_triple
from .spec import TargetSpec

# The widest vectors a feature gives, most capable first; used for `vector_bits: host`.
_VECTOR_FEATURES = (("+avx512f", 512), ("+avx2", 256), ("+avx", 256), ("+sve", 128),
                    ("+neon", 128), ("+simd128", 128), ("+sse2", 128))


def widest_vector_bits(features: str, default: int = 128) -> int:
    have = set(features.split(","))
    return next((bits for f, bits in _VECTOR_FEATURES if f in have), default)


def arch_of(triple: str) -> str:
    return triple.split("-", 1)[0]


class LlvmCpuBackend:
    """Code from tinyc's LLVM path for the spec's triple, cpu and features, run in process.

    Resolves `host` in cpu, features and vector_bits, and says why a spec cannot
    be built here (another architecture, or features this CPU lacks).
    """

    name = "cpu"
    kind = "cpu"
    runs_on: tuple[str, ...] = ("x86_64",)  # host architectures that run this code

    def cpu_target(self, spec: TargetSpec) -> CpuTarget:
        features = host_features() if spec.features == "host" else ",".join(spec.features)
        cpu = host_cpu() if spec.cpu == "host" else spec.cpu
        if spec.vector_bits == "host":
            bits = widest_vector_bits(features)
        else:
            bits = int(spec.vector_bits)
        return CpuTarget(spec.triple or host_triple(), cpu, features, bits)

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        host = host_triple()
        if arch_of(host) not in self.runs_on:
            return f"{self.name} code runs in process and this host is {host}"
        wanted = arch_of(spec.triple or host)
        if wanted != arch_of(host):
            return f"the spec asks for {wanted} code and this host runs {arch_of(host)}"
        missing = self.missing_features(spec)
        return f"this CPU lacks {', '.join(missing)}" if missing else None

    def missing_features(self, spec: TargetSpec) -> list[str]:
        if spec.features == "host":
            return []
        have = set(host_features().split(","))
        return [f[1:] for f in spec.features if f.startswith("+") and f not in have]


class PendingBackend:
    """A backend whose targets are listed and validated but not buildable yet.

    `missing` says what does not exist yet, e.g. "code generation for aarch64
    (a cross linker and qemu-aarch64 runner) comes with a later issue".
    """

    def __init__(self, name: str, kind: str, missing: str):
        self.name, self.kind, self.missing = name, kind, missing

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        return self.missing

    def cpu_target(self, spec: TargetSpec) -> CpuTarget:
        if self.kind != "cpu" or "host" in (spec.cpu, spec.features, spec.vector_bits):
            raise TargetError(f"target '{spec.name}' has no fixed CPU target")
        return CpuTarget(spec.triple, spec.cpu, ",".join(spec.features), int(spec.vector_bits))
