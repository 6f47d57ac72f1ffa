"""Intrinsic sets for a bare CpuTarget (kernel tests and benchmarks, which have
no target spec): every registered CPU set whose required features it has."""

from __future__ import annotations

from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget
from ..target.plugins import registry


def sets_for_features(target: CpuTarget) -> tuple[IntrinsicSet, ...]:
    have = set(target.features.split(","))
    sets = [reg.value for reg in registry().intrinsic_sets.values()]
    return tuple(s for s in sets if all(f in have for f in s.requires)
                 and any(i.emit.kind != "opcode" for i in s.intrinsics))
