"""tinyc backend for x86-64: LLVM code generation, run in process on the host."""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import LlvmCpuBackend, RuntimeDevice, hookimpl, yaml_files


class X86Backend(LlvmCpuBackend):
    name = "x86"
    runs_on = ("x86_64",)


def _load_artifact(folder: str) -> object:
    from tinyc.plugin import load

    return load(folder)


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(X86Backend())


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(RuntimeDevice("x86-host", ("x86",), _load_artifact,
                           description="shared library loaded into this process"))
