"""tinyc backend for RISC-V 64 with the vector extension (RVV 1.0).

Registers the `riscv` backend and its intrinsic sets. Code generation is not
there yet, so every riscv target says so instead of building something wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.target import PendingBackend, hookimpl, yaml_files

MISSING = ("code generation for riscv64 is not implemented yet: tinyc has no cross-link step "
           "(ziglang or gcc-riscv64-linux-gnu) and no runner (qemu-riscv64 with v=true) for "
           "riscv artifacts")


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(PendingBackend("riscv", "cpu", MISSING))


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)
