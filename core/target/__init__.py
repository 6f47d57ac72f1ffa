"""Targets: YAML specs, backend plugins, and resolving --target."""

from .backend import Backend
from .hookspecs import hookimpl
from .plugins import registry
from .spec import TargetSpec
from .targets import Device, resolve_device, resolve_spec_by_name

__all__ = ["Backend", "Device", "TargetSpec", "hookimpl", "registry", "resolve_device",
           "resolve_spec_by_name"]
