"""tinyc backend for Arm: aarch64 Linux (NEON, dotprod, i8mm, SVE) and Cortex-M
bare metal (M4/M7, M55 with Helium/MVE).

Registers the `arm` backend (LLVM code for the spec's triple, packaged as a
static library with a C header plus a runner program), its intrinsic sets, and
a runtime device that runs the runner under qemu-aarch64 (Linux user mode) or
qemu-system-arm (MPS2/MPS3 boards, semihosting).
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import (
    Graph,
    PassRegistration,
    RuntimeDevice,
    canonicalize_qdq,
    hookimpl,
    load_emulated,
    tools_missing_reason,
    yaml_files,
)

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


def integer_qdq(g: Graph) -> Graph:
    """Every QDQ unit that can be becomes an integer op. The core's default
    mirrors onnxruntime on x86, which runs int8 units with a shared
    Quantize/Dequantize pair (e.g. a residual block's input) in float: on a
    microcontroller that means float activations and float im2col buffers in
    RAM (ResNet-8: a 656 KiB arena instead of 60 KiB). Results then differ from
    onnxruntime by at most a quantization step where it computes in float."""
    return canonicalize_qdq(g, mirror_ort=False)


@hookimpl
def tinyc_register_passes(register: Callable) -> None:
    register(PassRegistration("after_import", integer_qdq, "arm_integer_qdq", backend="arm"))


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(RuntimeDevice("arm-qemu", ("arm",), load_emulated,
                           not_available_reason=emulators_missing,
                           description="qemu-aarch64 (Linux user mode) or qemu-system-arm "
                                       "(Cortex-M on MPS2/MPS3 boards, semihosting)"))
