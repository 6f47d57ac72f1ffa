"""tinyc backend for accel_sim, a simulated int8 GEMM accelerator.

One user of tinyc's accelerator kit (docs/accelerator-kit.md): the engine is
described by its specs (target_specs/accel_sim.yaml and accel_sim_small.yaml,
shipped with tinyc) and its GEMM command by intrinsics/accel_sim_gemm.yaml;
the kit compiles regions to command streams and simulates them, in split
deployments such as `--target x86,accel_sim`.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import (
    GemmArrayBackend,
    gemm_array_op_support,
    gemm_array_runtime_device,
    hookimpl,
    yaml_files,
)

NAME = "accel_sim"


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(GemmArrayBackend(NAME))


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)


@hookimpl
def tinyc_register_op_support(register: Callable) -> None:
    register(gemm_array_op_support(NAME))


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(gemm_array_runtime_device(NAME, "bit-exact int8 simulator with a cycle model"))
