"""A tunable workload, its key, and the space of its knobs.

A workload is what a kernel's speed depends on: the op, the shapes and dtypes
of its operands, which of them are compile-time constants (packed then), its
attributes, the target (a hash of what code is built for) and tinyc's version.
Its key (a hash of all that) names it in tuning logs, so a record applies
exactly where the same code would be generated.

A knob space is the lowering's own statement of what it can vary: named
choices, each with its legal values and the default the lowering would take
without tuning. Values are JSON scalars or lists (a tile is [rows, vectors]).
Knobs that share a resource (an accelerator's tile sizes and its buffers) also
state limits, as data: what a configuration uses of a capacity must fit it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

Config = dict[str, Any]  # knob name -> chosen value
COSTS = ("time", "cycles")  # what a workload's candidates are measured in
_TRIES = 64  # draws of a sample or a mutation before giving up on one within the limits


def _canonical(value: Any) -> Any:
    """Tuples as lists, so a value reads back from JSON equal to itself."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


@dataclass(frozen=True)
class Workload:
    op: str  # the node's op, e.g. "MatMul" or "tinyc.Conv"
    kernel: str  # the kernel family that asks, e.g. "gemm_f32"
    shapes: tuple[tuple[int, ...], ...]  # inputs' then outputs' shapes
    dtypes: tuple[str, ...]
    consts: tuple[bool, ...]  # which inputs are constants
    attrs: str  # the node's attributes as canonical JSON
    target: str  # hash of the CPU the code is built for (features, width, threads)
    version: str  # tinyc's version
    # the problem's size as the kernel sees it (m, n, k for a GEMM): cost-model
    # features, so one model serves every shape of a kernel family
    dims: tuple[tuple[str, int], ...] = ()
    # what a candidate's cost is: "time" (seconds of a native run) or "cycles"
    # (a simulated device's count, deterministic); the tuner measures it so
    cost: str = "time"

    def __post_init__(self) -> None:
        if self.cost not in COSTS:
            raise ValueError(f"cost {self.cost!r} is not one of {COSTS}")

    def to_json(self) -> dict:
        doc = {"op": self.op, "kernel": self.kernel, "shapes": _canonical(self.shapes),
               "dtypes": list(self.dtypes), "consts": list(self.consts), "attrs": self.attrs,
               "target": self.target, "version": self.version,
               "dims": [[k, v] for k, v in self.dims]}
        if self.cost != "time":  # written only when not the default: older keys hold
            doc["cost"] = self.cost
        return doc

    @staticmethod
    def from_json(d: dict) -> Workload:
        return Workload(str(d["op"]), str(d["kernel"]),
                        tuple(tuple(int(x) for x in s) for s in d["shapes"]),
                        tuple(d["dtypes"]), tuple(bool(c) for c in d["consts"]),
                        str(d["attrs"]), str(d["target"]), str(d["version"]),
                        tuple((str(k), int(v)) for k, v in d.get("dims", ())),
                        str(d.get("cost", "time")))

    @property
    def key(self) -> str:
        return _digest(self.to_json())

    @property
    def summary(self) -> str:
        dims = "x".join(str(v) for _, v in self.dims) or str(list(self.shapes))
        return f"{self.op} {self.kernel} {dims}"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def target_hash(fields: dict) -> str:
    """The hash a Workload names its target by."""
    return _digest(fields)


@dataclass(frozen=True)
class Knob:
    name: str
    values: tuple[Any, ...]  # legal values, the default among them
    default: Any

    def __post_init__(self) -> None:
        values = tuple(_canonical(v) for v in self.values)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "default", _canonical(self.default))
        if self.default not in values:
            raise ValueError(f"knob {self.name}: default {self.default} is not a legal value")


def _value(config: Config, ref: str) -> Any:
    """A knob's value, or an item of a list value: "tile" or "slots[2]"."""
    name, _, index = ref.partition("[")
    value = _canonical(config[name])
    return value[int(index.rstrip("]"))] if index else value


@dataclass(frozen=True)
class Limit:
    """A capacity the knobs share, as data: sum(coefficient * product of the
    referenced values) * the `per` value (e.g. the slots a buffer is split
    into, each holding one tile) must be at most `capacity`."""

    name: str  # what is full when it fails, e.g. "accumulator buffer"
    terms: tuple[tuple[int, tuple[str, ...]], ...]  # (coefficient, knob refs)
    capacity: int
    per: str = ""  # a knob ref multiplying the use; "" for none

    def use(self, config: Config) -> int:
        total = sum(c * math.prod(int(_value(config, r)) for r in refs)
                    for c, refs in self.terms)
        return total * (int(_value(config, self.per)) if self.per else 1)

    def holds(self, config: Config) -> bool:
        return self.use(config) <= self.capacity


@dataclass(frozen=True)
class KnobSpace:
    knobs: tuple[Knob, ...]
    limits: tuple[Limit, ...] = ()

    def __post_init__(self) -> None:
        broken = [lim.name for lim in self.limits if not lim.holds(self.defaults())]
        if broken:
            raise ValueError(f"the defaults exceed {', '.join(broken)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    @functools.cached_property
    def size(self) -> int:
        """Configurations within the limits (counted, where there are few enough)."""
        every = math.prod(len(k.values) for k in self.knobs)
        if not self.limits or every > 200_000:
            return every
        combos = itertools.product(*(k.values for k in self.knobs))
        return sum(self._fits(dict(zip(self.names, c, strict=True))) for c in combos)

    def defaults(self) -> Config:
        return {k.name: k.default for k in self.knobs}

    def legal(self, config: Config) -> bool:
        """Every knob given, with a legal value (a record from an older space is
        not), and within the limits."""
        return set(config) == set(self.names) and all(
            _canonical(config[k.name]) in k.values for k in self.knobs) and self._fits(config)

    def _fits(self, config: Config) -> bool:
        return all(lim.holds(config) for lim in self.limits)

    def sample(self, rng: random.Random) -> Config:
        """A random configuration within the limits (the defaults if none is drawn)."""
        for _ in range(_TRIES if self.limits else 1):
            config = {k.name: rng.choice(k.values) for k in self.knobs}
            if self._fits(config):
                return config
        return self.defaults()

    def mutate(self, config: Config, rng: random.Random) -> Config:
        """One knob moved to a neighbouring or a random other legal value (within
        the limits; `config` itself if no such move is drawn)."""
        for _ in range(_TRIES if self.limits else 1):
            out = self._move(config, rng)
            if self._fits(out):
                return out
        return dict(config)

    def _move(self, config: Config, rng: random.Random) -> Config:
        out = dict(config)
        knobs = [k for k in self.knobs if len(k.values) > 1]
        if not knobs:
            return out
        k = rng.choice(knobs)
        i = k.values.index(_canonical(out[k.name]))
        if rng.random() < 0.6:  # a neighbour: values are listed in order
            j = min(len(k.values) - 1, max(0, i + rng.choice((-1, 1))))
        else:
            j = rng.randrange(len(k.values))
        out[k.name] = k.values[j]
        return out

    def features(self, config: Config) -> list[float]:
        """Numbers for the cost model: each knob's value (a list's items), log2;
        a choice that is no number, its place among the legal values (-1: not
        one of them, a record of another workload's space)."""
        out: list[float] = []
        for k in self.knobs:
            value = _canonical(config[k.name])
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out.append(math.log2(1 + float(v)))
                else:
                    out.append(float(k.values.index(value)) if value in k.values else -1.0)
        return out


def config_id(config: Config) -> str:
    """A config's identity (knob order does not matter)."""
    return json.dumps({k: _canonical(v) for k, v in config.items()}, sort_keys=True)


@dataclass(frozen=True)
class Tunable:
    """What a lowering asks the schedule source about: its workload and space."""

    workload: Workload
    space: KnobSpace
    node: str = field(default="", compare=False)  # the node that asked, for reports

    @property
    def key(self) -> str:
        return self.workload.key

    def features(self, config: Config) -> list[float]:
        """The family's tag (kernel families differ in their knobs and sizes: the
        cost model keeps them apart), the sizes (log2), the knobs' features."""
        dims = [math.log2(1 + v) for _, v in self.workload.dims]
        return [self.family_tag] + dims + self.space.features(config)

    @property
    def family_tag(self) -> float:
        """A number naming the kernel family and its knobs (stable across runs)."""
        text = f"{self.workload.kernel} {' '.join(self.space.names)}"
        return float(int(hashlib.sha256(text.encode()).hexdigest()[:6], 16))
