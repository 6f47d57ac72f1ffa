"""The arm backend: aarch64 Linux (NEON; dotprod, i8mm, SVE by feature) and
Cortex-M bare metal (M4/M7 with DSP and FPU; M55 with Helium/MVE)."""

from __future__ import annotations

from tinyc.plugin import CompiledModel, CrossCpuBackend, Package, arch_of, linux_package

from . import cortex_m

CORTEX_M_ARCHES = ("thumbv6m", "thumbv7m", "thumbv7em", "thumbv8m.main", "thumbv8.1m.main")

# Cores qemu-aarch64 (7.2) models; other cpus run on "max", which has every feature.
QEMU_AARCH64_CPUS = ("cortex-a35", "cortex-a53", "cortex-a55", "cortex-a57", "cortex-a72",
                     "cortex-a76", "neoverse-n1", "a64fx")


def qemu_aarch64_cpu(cpu: str) -> str:
    return cpu if cpu in QEMU_AARCH64_CPUS else "max"


class ArmBackend(CrossCpuBackend):
    name = "arm"
    arches = ("aarch64", *CORTEX_M_ARCHES)

    def symbolic_shapes(self, cpu) -> bool:
        """aarch64 Linux runners size their buffers per run; Cortex-M builds
        place everything statically (no allocator), so they stay static."""
        return arch_of(cpu.triple) == "aarch64"

    def package(self, model: CompiledModel) -> Package:
        if arch_of(model.cpu.triple) != "aarch64":
            return cortex_m.package(model)
        run = {"runner": "qemu-user", "qemu": "qemu-aarch64",
               "cpu": qemu_aarch64_cpu(model.cpu.cpu)}
        files, meta = linux_package(model, "aarch64-linux-musl", run)
        return Package(files, meta)
