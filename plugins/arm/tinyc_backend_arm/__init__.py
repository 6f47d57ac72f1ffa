"""tinyc backend for Arm: aarch64 (NEON, dotprod, i8mm) and Cortex-M (Helium/MVE).

Registers the `arm` backend and its intrinsic sets. Code generation is not
there yet, so every arm target says so instead of building something wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.target import PendingBackend, hookimpl, yaml_files

MISSING = ("code generation for aarch64 and Cortex-M is not implemented yet: tinyc has no "
           "cross-link step (ziglang or the Debian cross gcc) and no runner (qemu-aarch64, "
           "qemu-system-arm with semihosting) for arm artifacts")


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(PendingBackend("arm", "cpu", MISSING))


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)
