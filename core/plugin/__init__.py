"""tinyc.plugin: everything a backend plugin imports from tinyc, and nothing else.

Plugins (plugins/*, and third-party `tinyc-backend-*` distributions) import
this module and tinyc's top-level names only; tests/test_plugin_api.py checks
the in-tree ones. See docs/writing-a-backend.md. Names load on first use, so a
plugin that needs only hooks and a runtime device imports no compiler (a
runtime-only install loads plugins to find runtime devices).

- hooks: `hookimpl`, and what hooks register (`Backend`, `OpSupport`,
  `OpPattern`, `PassRegistration`, `RuntimeDevice`, `IntrinsicSet`), specs
  (`TargetSpec`, `yaml_files`, `parse_size`), resolving targets;
- CPU backends: `LlvmCpuBackend`, `PendingBackend`, `CrossCpuBackend`, the
  `Packager` protocol (`CompiledModel` -> `Package`) and the cross toolchain
  (zig, the C harness, emulated runners);
- accelerators: the graph (`Graph`, `Node`, `TensorType`, `DType`), the
  region-compiler protocols (`AcceleratorBackend`, `RegionProgram`,
  `AcceleratorSession`), and `int_gemms_of`: the int8 GEMMs tinyc's CPU
  lowering computes for a node, described, so a device computes the same bits;
- the accelerator kit (tinyc.accel): `GemmArrayBackend`, `gemm_array_op_support`,
  `gemm_array_runtime_device` make a GEMM-array NPU from its YAML spec; the
  jobs, command stream (`Emitter`, `emit_job`), `Program` and `Simulator`
  underneath are here for plugins that change a step;
- runtime helpers for runtime devices (`TensorInfo`, `checked_feeds`, ...);
- errors: `TargetError`, `SpecError`, `NotLowerable`, `TinycError`.

The conformance kit is `tinyc.plugin.conformance`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # hooks and registrations
    "hookimpl": "tinyc.target.hookspecs",
    "Backend": "tinyc.target.backend",
    "CompiledModel": "tinyc.target.backend",
    "Package": "tinyc.target.backend",
    "Packager": "tinyc.target.backend",
    "OpPattern": "tinyc.target.registrations",
    "OpSupport": "tinyc.target.registrations",
    "PassRegistration": "tinyc.target.registrations",
    "RuntimeDevice": "tinyc.target.registrations",
    "PASS_PHASES": "tinyc.target.registrations",
    "Intrinsic": "tinyc.target.intrinsics",
    "IntrinsicSet": "tinyc.target.intrinsics",
    "read_intrinsic_file": "tinyc.target.intrinsics",
    "check_intrinsic_set": "tinyc.target.llvm_check",
    "FunctionPass": "tinyc.passes",
    "canonicalize_qdq": "tinyc.passes.quant_canonicalize",
    # specs and targets
    "TargetSpec": "tinyc.target.spec",
    "parse_size": "tinyc.target.spec",
    "yaml_files": "tinyc.target.builtin",
    "registry": "tinyc.target.plugins",
    "Deployment": "tinyc.target.targets",
    "Device": "tinyc.target.targets",
    "resolve_device": "tinyc.target.targets",
    "resolve_devices": "tinyc.target.targets",
    "resolve_spec_by_name": "tinyc.target.targets",
    "named_intrinsic_sets": "tinyc.target.targets",
    "CpuTarget": "tinyc.target.machine",
    "arch_of": "tinyc.target.cpu",
    # CPU backends and the cross toolchain
    "LlvmCpuBackend": "tinyc.target.cpu",
    "PendingBackend": "tinyc.target.cpu",
    "CrossCpuBackend": "tinyc.link.cross_backend",
    "CrossBuild": "tinyc.link.cross",
    "RUNTIME_C": "tinyc.link.cross",
    "harness_dir": "tinyc.link.cross",
    "io_file_bytes": "tinyc.link.cross",
    "linux_package": "tinyc.link.cross",
    "part_sizes": "tinyc.link.cross",
    "bare_metal_memory": "tinyc.link.cross",
    "run_zig": "tinyc.link.zig",
    "zig_missing_reason": "tinyc.link.zig",
    # accelerators
    "Graph": "tinyc.ir",
    "Node": "tinyc.ir",
    "TensorType": "tinyc.ir",
    "DType": "tinyc.ir",
    "AcceleratorBackend": "tinyc.target.accelerator",
    "AcceleratorSession": "tinyc.target.accelerator",
    "RegionProgram": "tinyc.target.accelerator",
    "Im2col": "tinyc.program",
    "IntGemm": "tinyc.program",
    "IntMatrix": "tinyc.program",
    "Requant": "tinyc.program",
    "Buf": "tinyc.program",
    "int_gemms_of": "tinyc.lower.igemm",
    "NotAGemm": "tinyc.tensorize.gemm_form",
    "gemm_form": "tinyc.tensorize.gemm_form",
    # the accelerator kit (tinyc.accel, docs/accelerator-kit.md)
    "GemmArrayBackend": "tinyc.accel.backend",
    "gemm_array_op_support": "tinyc.accel.backend",
    "gemm_array_runtime_device": "tinyc.accel.backend",
    "GemmArraySession": "tinyc.accel.device",
    "EngineConfig": "tinyc.accel.engine",
    "engine_of": "tinyc.accel.engine",
    "GemmJob": "tinyc.accel.jobs",
    "ConvGeometry": "tinyc.accel.jobs",
    "job_for": "tinyc.accel.layers",
    "Unsupported": "tinyc.accel.layers",
    "Emitter": "tinyc.accel.commands",
    "Command": "tinyc.accel.commands",
    "emit_job": "tinyc.accel.tiling",
    "Program": "tinyc.accel.program",
    "compile_region": "tinyc.accel.program",
    "Simulator": "tinyc.accel.simulator",
    "SimulationError": "tinyc.accel.simulator",
    "RunStats": "tinyc.accel.simulator",
    # runtime devices
    "load": "tinyc.runtime.devices",
    "read_meta": "tinyc.runtime.devices",
    "TensorInfo": "tinyc.runtime.native",
    "checked_feeds": "tinyc.runtime.native",
    "output_indices": "tinyc.runtime.native",
    "load_emulated": "tinyc.runtime.emulated",
    "bind_sizes": "tinyc.runtime.symbolic",
    "ShapeGuardError": "tinyc.runtime.symbolic",
    "tools_missing_reason": "tinyc.runtime.emulated",
    "RunError": "tinyc.runtime.emulated",
    "pack_tensors": "tinyc.runtime.emulated",
    "qemu_semihosting": "tinyc.runtime.emulated",
    # errors
    "TinycError": "tinyc.errors",
    "TargetError": "tinyc.errors",
    "SpecError": "tinyc.errors",
    "NotLowerable": "tinyc.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"tinyc.plugin has no {name!r}; a plugin needing more of tinyc "
                             "should ask for it to be added here")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
