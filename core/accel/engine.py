"""The engine a GEMM-array spec describes: a rows x cols int8 MAC array, three
on-chip buffers, a DMA engine, a clock, fused post-ops and shape limits.

Read from the spec's `accelerator:` and `memories:` fields (e.g.
target_specs/accel_sim*.yaml; docs/accelerator-kit.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..target.spec import TargetSpec, parse_size

BUFFERS = ("input_buffer", "weight_buffer", "accumulator_buffer")
POST_OPS = ("bias", "requantize", "relu", "clip")
EIGHT_BIT = frozenset({"int8", "uint8"})


@dataclass(frozen=True)
class Limits:
    """The largest layer the engine's address generators handle."""

    max_kernel: int = 11  # kernel height and width
    max_stride: int = 4
    max_dilation: int = 4
    max_channels: int = 4096  # input and output channels (K and N of the GEMM)


@dataclass(frozen=True)
class EngineConfig:
    name: str
    rows: int  # the array's reduction depth: K elements per pass
    cols: int  # output channels per pass
    input_bytes: int
    weight_bytes: int
    acc_bytes: int
    dma_bytes_per_cycle: int
    dma_setup_cycles: int
    clock_hz: float
    post_ops: tuple[str, ...] = POST_OPS
    limits: Limits = Limits()
    gemm_intrinsic: str = ""  # the spec's GEMM command driving the array (tile_intrinsic.py)

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols

    def dma_cycles(self, nbytes: int) -> int:
        return self.dma_setup_cycles + -(-nbytes // self.dma_bytes_per_cycle)

    def seconds(self, cycles: int) -> float:
        return cycles / self.clock_hz


def engine_of(spec: TargetSpec, reg=None) -> EngineConfig:
    """Raises ValueError naming the missing or unsupported field when the spec lacks
    one, or tile_intrinsic.NoTile when no GEMM command of its intrinsic sets fits
    the array. `reg`: the plugin registry naming the sets (default: the installed one)."""
    from ..target.plugins import registry
    from ..target.targets import named_intrinsic_sets
    from .tile_intrinsic import array_tile

    acc = spec.accelerator or {}
    missing = [f"accelerator.{k}" for k in ("array", "clock_mhz", "dma") if k not in acc]
    missing += [f"memories.{b}" for b in BUFFERS if b not in spec.memories]
    if missing:
        raise ValueError(f"spec '{spec.name}' lacks {', '.join(missing)}")
    _check_dtypes(spec.name, acc.get("dtypes", {}))
    limits = Limits(**acc.get("limits", {}))
    tile = array_tile(named_intrinsic_sets(spec, reg or registry()), acc["array"]["rows"],
                      acc["array"]["cols"])
    return EngineConfig(
        name=spec.name, rows=acc["array"]["rows"], cols=acc["array"]["cols"],
        input_bytes=parse_size(spec.memories["input_buffer"]["size"]),
        weight_bytes=parse_size(spec.memories["weight_buffer"]["size"]),
        acc_bytes=parse_size(spec.memories["accumulator_buffer"]["size"]),
        dma_bytes_per_cycle=acc["dma"]["bytes_per_cycle"],
        dma_setup_cycles=acc["dma"].get("setup_cycles", 0),
        clock_hz=float(acc["clock_mhz"]) * 1e6,
        post_ops=tuple(acc.get("post_ops", POST_OPS)), limits=limits, gemm_intrinsic=tile.name)


def _check_dtypes(name: str, dtypes: dict) -> None:
    """The simulated datapath: 8-bit operands (zero points subtracted before the
    multiply, so int8 and uint8 both fit), int32 accumulators, 8-bit or int32 results."""
    allowed = {"input": EIGHT_BIT, "weight": EIGHT_BIT, "accumulator": {"int32"},
               "output": EIGHT_BIT | {"int32"}}
    for field_name, dtype in dtypes.items():
        if dtype not in allowed[field_name]:
            choices = ", ".join(sorted(allowed[field_name]))
            raise ValueError(f"spec '{name}': accelerator.dtypes.{field_name} {dtype} is not "
                             f"one the GEMM-array kit simulates ({choices})")
