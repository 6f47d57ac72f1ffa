"""Targets: YAML specs and intrinsic sets, backend plugins, and resolving --target.

The public API for plugin authors: `hookimpl` and the hooks of `hookspecs`, the
things hooks register (`Backend`, `OpSupport`, `PassRegistration`, ...), and the
reusable backends `LlvmCpuBackend` and `PendingBackend` (the cross-compiling one,
`CrossCpuBackend`, builds with the link stage's toolchain: link/cross_backend.py).
"""

from .backend import Backend, CompiledModel, Package, Packager
from .builtin import yaml_files
from .cpu import LlvmCpuBackend, PendingBackend
from .hookspecs import hookimpl
from .intrinsics import Intrinsic, IntrinsicSet, read_intrinsic_file
from .plugins import load_registry, registry
from .registrations import PASS_PHASES, OpPattern, OpSupport, PassRegistration, RuntimeDevice
from .spec import TargetSpec, read_spec_file
from .store import Registry
from .targets import Deployment, Device, resolve_device, resolve_devices, resolve_spec_by_name

__all__ = ["PASS_PHASES", "Backend", "CompiledModel", "Deployment", "Device",
           "Intrinsic", "IntrinsicSet", "LlvmCpuBackend", "OpPattern", "OpSupport", "Package",
           "Packager", "PassRegistration", "PendingBackend",
           "Registry", "RuntimeDevice", "TargetSpec", "hookimpl", "load_registry",
           "read_intrinsic_file", "read_spec_file", "registry", "resolve_device",
           "resolve_devices", "resolve_spec_by_name", "yaml_files"]
