"""tinyc backend for RISC-V 64 Linux: RV64GC, and RV64GCV with the vector
extension 1.0 (RVV).

Registers the `riscv` backend (LLVM code for the spec's triple, packaged as a
static library with a C header plus a static runner program), its intrinsic
sets, and a runtime device that runs the runner under qemu-riscv64 with the
vector extension switched on only when the target has it.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import (
    CompiledModel,
    CrossCpuBackend,
    Package,
    RuntimeDevice,
    hookimpl,
    linux_package,
    load_emulated,
    tools_missing_reason,
    yaml_files,
)

QEMU = {"qemu-riscv64": "apt-get install qemu-user"}


def qemu_cpu(features: str, vector_bits: int) -> str:
    """qemu's -cpu for the target: RVV 1.0 at the spec's VLEN if it has +v, else
    none, so code that uses vectors it should not have dies with SIGILL."""
    if "+v" in features.split(","):
        return f"rv64,v=true,vlen={max(vector_bits, 128)},vext_spec=v1.0"
    return "rv64,v=false"


class RiscvBackend(CrossCpuBackend):
    name = "riscv"
    arches = ("riscv64",)
    symbolic_shapes = True  # Linux runners size their buffers per run

    def package(self, model: CompiledModel) -> Package:
        run = {"runner": "qemu-user", "qemu": "qemu-riscv64",
               "cpu": qemu_cpu(model.cpu.features, model.cpu.vector_bits)}
        files, meta = linux_package(model, "riscv64-linux-musl", run)
        return Package(files, meta)


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(RiscvBackend())


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(RuntimeDevice("riscv-qemu", ("riscv",), load_emulated,
                           not_available_reason=lambda: tools_missing_reason(QEMU),
                           description="qemu-riscv64 (Linux user mode; RVV 1.0 when the "
                                       "target has +v)"))
