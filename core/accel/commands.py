"""The engine's command stream, and the emitter that adds dependencies.

Commands run on three in-order units, as in VTA: a load DMA (device memory to
the on-chip buffers), the compute unit (the MAC array and the post-op ALU) and
a store DMA (accumulators back to device memory). Each buffer is split into
two slots so that the DMA fills one while the array reads the other (double
buffering). A command waits for the
commands listed in `deps` (read-after-write and write-after-read/write hazards
on buffer slots and device tensors, computed by the emitter as a compiler
would emit dependency tokens); `Sync` waits for everything before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class LoadInput:
    """DMA the block inp[batch, m0:m1, k0:k1] (im2col addressing for convs) into an input slot."""

    job: int
    batch: int
    m0: int
    m1: int
    k0: int
    k1: int
    slot: int
    deps: tuple[int, ...] = ()
    unit = "load"


@dataclass(frozen=True)
class LoadWeights:
    """DMA wgt[k0:k1, n0:n1] and the per-channel post-op parameters into a weight slot."""

    job: int
    k0: int
    k1: int
    n0: int
    n1: int
    slot: int
    deps: tuple[int, ...] = ()
    unit = "load"


@dataclass(frozen=True)
class Gemm:
    """acc[slot] (+)= inp[slot] x wgt[slot], in passes of rows x cols on the array."""

    job: int
    inp_slot: int
    wgt_slot: int
    acc_slot: int
    accumulate: bool
    deps: tuple[int, ...] = ()
    unit = "compute"


@dataclass(frozen=True)
class Alu:
    """Post-ops on an accumulator slot in place: bias, requantize, ReLU / clip."""

    job: int
    acc_slot: int
    deps: tuple[int, ...] = ()
    unit = "compute"


@dataclass(frozen=True)
class Store:
    """DMA the accumulator block out[batch, m0:m1, n0:n1], narrowed, to device memory."""

    job: int
    batch: int
    m0: int
    m1: int
    n0: int
    n1: int
    acc_slot: int
    deps: tuple[int, ...] = ()
    unit = "store"


@dataclass(frozen=True)
class Sync:
    """Both units wait until every earlier command is done (between dependent layers)."""

    deps: tuple[int, ...] = ()
    unit = "sync"


Command = LoadInput | LoadWeights | Gemm | Alu | Store | Sync
KINDS = {c.__name__: c for c in (LoadInput, LoadWeights, Gemm, Alu, Store, Sync)}


@dataclass
class Emitter:
    """Appends commands, computing each one's dependencies from what it reads and writes."""

    commands: list[Command] = field(default_factory=list)
    _writer: dict[str, int] = field(default_factory=dict)
    _readers: dict[str, list[int]] = field(default_factory=dict)
    _barrier: int | None = None

    def emit(self, cmd: Command, reads: tuple[str, ...], writes: tuple[str, ...]) -> int:
        """Append `cmd` with its dependencies; resources are names like 'inp0' or 't:x'."""
        deps = {self._writer[r] for r in reads if r in self._writer}
        for w in writes:
            if w in self._writer:
                deps.add(self._writer[w])
            deps.update(self._readers.get(w, ()))
        if self._barrier is not None:
            deps = {d for d in deps if d > self._barrier} | {self._barrier}
        index = len(self.commands)
        self.commands.append(replace(cmd, deps=tuple(sorted(deps))))
        for r in reads:
            self._readers.setdefault(r, []).append(index)
        for w in writes:
            self._writer[w] = index
            self._readers[w] = []
        return index

    def sync(self) -> None:
        if not self.commands or isinstance(self.commands[-1], Sync):
            return
        self._barrier = len(self.commands)
        self.commands.append(Sync())
