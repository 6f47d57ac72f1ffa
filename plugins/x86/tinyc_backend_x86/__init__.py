"""tinyc backend for x86-64: LLVM code generation, run in process on the host."""

from __future__ import annotations

from tinyc.codegen.machine import CpuTarget, host_cpu, host_features, host_triple
from tinyc.target import TargetSpec, hookimpl


def _vector_bits(features: str) -> int:
    if "+avx512f" in features.split(","):
        return 512
    if "+avx2" in features.split(","):
        return 256
    return 128


class X86Backend:
    name = "x86"

    def cpu_target(self, spec: TargetSpec) -> CpuTarget:
        cpu = host_cpu() if spec.cpu == "host" else spec.cpu
        if spec.features == "host":
            features = host_features()
        else:
            features = ",".join(spec.features)
        bits = _vector_bits(features) if spec.vector_bits == "host" else int(spec.vector_bits)
        return CpuTarget(spec.triple or host_triple(), cpu, features, bits)

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        host = host_triple()
        if not host.startswith("x86_64"):
            return f"x86 code runs in process and this host is {host}"
        needed = [] if spec.features == "host" else [f[1:] for f in spec.features if f[0] == "+"]
        have = set(host_features().split(","))
        missing = [f for f in needed if f"+{f}" not in have]
        if missing:
            return f"this CPU lacks {', '.join(missing)}"
        return None


@hookimpl
def tinyc_register_backends(register) -> None:
    register(X86Backend())
