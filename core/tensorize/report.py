"""What the compile report says about tensorization, per lowered node."""

from __future__ import annotations

from ..target.plugins import registry
from ..target.targets import Device, named_intrinsic_sets


def left_out_sets(device: Device) -> tuple[tuple[str, str], ...]:
    """Sets the target spec names that its features do not allow (`features: host`)."""
    usable = {s.name for s in device.intrinsics}
    have = set(device.cpu.features.split(",")) if device.cpu else set()
    out = []
    for iset in named_intrinsic_sets(device.spec, registry()):
        if iset.name not in usable:
            lacking = ", ".join(f for f in iset.requires if f not in have)
            out.append((iset.name, f"feature missing: needs {lacking}"))
    return tuple(out)


def tensorize_entry(intrinsic: str, rejected: tuple[tuple[str, str], ...],
                    left_out: tuple[tuple[str, str], ...]) -> dict:
    """The report's keys for one node: the chosen intrinsic and, for GEMM-like
    nodes (those the tensorizer looked at), every other one with its reason."""
    considered = bool(intrinsic or rejected)
    return {"intrinsic": intrinsic,
            "rejected": [list(r) for r in rejected + (left_out if considered else ())]}
