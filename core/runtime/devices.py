"""Loading an artifact on the device that runs it.

Every artifact is a plan of regions (one, for a single device). A host shared
library (model.so) loads in this process with ctypes and needs no
plugin, compiler or emulator. Any other artifact (a cross target's runner or
wasm module) is run by the runtime device its backend registered through
`tinyc_register_runtime_devices`; model.json names the backend.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import TargetError
from . import validate
from .native import NativeModel
from .regions import RegionModel, is_split


def read_meta(directory: str | os.PathLike, verify: bool = False) -> dict:
    """model.json, checked against its own checksum (required when `verify`)."""
    return validate.read_meta(os.fspath(directory), require_sidecar=verify)


def runs_in_process(meta: dict) -> bool:
    sums = meta.get("checksums")  # not a dict: NativeModel's checks say what is wrong
    return not isinstance(sums, dict) or "model.so" in sums


def load(directory: str | os.PathLike, verify: bool = False) -> Any:
    """Load a saved artifact (a folder written by Artifact.save) for running.

    Returns an object with get_inputs(), get_outputs() and run(output_names, feeds).
    Every load validates the artifact first (runtime/validate.py); verify=True
    also requires model.json's own checksum file (the cache's entries have one).
    """
    d = os.fspath(directory)
    meta = read_meta(d, verify)
    if is_split(meta):  # host regions in process, accelerators on their devices
        return RegionModel(d, verify=verify)
    if runs_in_process(meta):  # one CPU region: one entry call per run
        if (meta.get("symbolic") or {}).get("unbacked"):  # outputs sized by data
            from .unbacked import DataDependentModel

            return DataDependentModel(d, verify=verify)
        if "symbolic" in meta:
            from .symbolic import SymbolicModel

            return SymbolicModel(d, verify=verify)
        return NativeModel(d, verify=verify)
    validate.check_packaged(d, meta)
    device = runtime_device_for(meta.get("backend") or "?", meta.get("target", "?"))
    return device.load(d)


def runtime_device_for(backend: str, target: str) -> Any:
    """The registered runtime device for `backend` that is available here."""
    from ..target import registry  # plugins load only for artifacts that need them

    devices = [p.value for p in registry().runtime_devices.values() if backend in p.value.backends]
    if not devices:
        raise TargetError(f"no installed plugin registers a runtime device for backend "
                          f"'{backend}' (target {target}); pip install "
                          f"tinyc-backend-{backend.replace('_', '-')}")
    reasons = []
    for device in devices:
        reason = device.not_available_reason()
        if reason is None:
            return device
        reasons.append(f"{device.name}: {reason}")
    raise TargetError(f"cannot run {target} artifacts here: " + "; ".join(reasons))
