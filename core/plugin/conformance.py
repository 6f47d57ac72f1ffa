"""The conformance kit for backend authors: import its checks into a test
module of your plugin and pytest runs them against your target (the
`tinyc_target` fixture, or --tinyc-target). An accelerator is checked beside
the host's CPU: `host_cpu_target() + ",npu"`. See docs/writing-a-backend.md
and docs/accelerator-kit.md."""

from ..testing.conformance.cases import MODEL_CASES, OP_CASES
from ..testing.conformance.checks import (
    test_int8_layer_runs_on_the_accelerator,
    test_int8_split_run_equals_the_cpu_run,
    test_intrinsics_emit,
    test_model,
    test_op,
    test_spec_resolves,
)
from ..testing.conformance.int8_cases import INT8_CASES

# the tinyc CPU target of each host architecture, for checking an accelerator beside it
HOST_CPU_TARGETS = {"x86_64": "x86", "aarch64": "aarch64", "arm64": "aarch64"}


def host_cpu_target() -> str:
    """The CPU target that runs on this machine (x86 on x86_64, aarch64 on Arm)."""
    import platform

    machine = platform.machine().lower()
    if machine not in HOST_CPU_TARGETS:
        from ..errors import TargetError

        raise TargetError(f"no tinyc CPU target runs on a {machine} host; name one: "
                          "--tinyc-target CPU,ACCELERATOR")
    return HOST_CPU_TARGETS[machine]


__all__ = ["INT8_CASES", "MODEL_CASES", "OP_CASES", "host_cpu_target",
           "test_int8_layer_runs_on_the_accelerator", "test_int8_split_run_equals_the_cpu_run",
           "test_intrinsics_emit", "test_model", "test_op", "test_spec_resolves"]
