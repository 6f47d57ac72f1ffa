"""tinyc backend for Arm: aarch64 Linux (NEON, dotprod, i8mm, SVE) and Cortex-M
bare metal (M4/M7, M55 with Helium/MVE).

Registers the `arm` backend (LLVM code for the spec's triple, packaged as a
static library with a C header plus a runner program), its intrinsic sets, and
a runtime device that runs the runner under qemu-aarch64 (Linux user mode) or
qemu-system-arm (MPS2/MPS3 boards, semihosting).
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import RuntimeDevice, hookimpl, load_emulated, tools_missing_reason, yaml_files

from .backend import ArmBackend

EMULATORS = {"qemu-aarch64": "apt-get install qemu-user",
             "qemu-system-arm": "apt-get install qemu-system-arm"}


def emulators_missing() -> str | None:
    return tools_missing_reason(EMULATORS)


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(ArmBackend())


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(RuntimeDevice("arm-qemu", ("arm",), load_emulated,
                           not_available_reason=emulators_missing,
                           description="qemu-aarch64 (Linux user mode) or qemu-system-arm "
                                       "(Cortex-M on MPS2/MPS3 boards, semihosting)"))
