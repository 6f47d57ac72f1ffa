"""Where a lowering gets a tunable workload's configuration from.

A schedule source answers `decide(tunable)` with a configuration legal in the
tunable's space and whether it came from tuning. The defaults are the
lowering's own choices; a tuned source takes the best record of a tuning
database; the tuner's worker forces one candidate; the tuner finds a model's
workloads by recording what the lowerings ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .database import TuningDatabase, TuningRecord
from .space import Config, Tunable


@dataclass(frozen=True)
class Decision:
    config: Config
    record: TuningRecord | None = None  # the tuning record it came from; None: defaults

    @property
    def tuned(self) -> bool:
        return self.record is not None

    def text(self) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in self.config.items())
        if self.record is None:
            return f"schedule: defaults ({knobs})"
        if self.record.workload.cost == "cycles":
            return f"schedule: tuned ({knobs}; measured {self.record.best:.0f} cycles)"
        return f"schedule: tuned ({knobs}; measured {self.record.best * 1e6:.1f} us)"


class ScheduleSource(Protocol):
    def decide(self, tunable: Tunable) -> Decision: ...

    @property
    def fingerprint(self) -> str:
        """What cache keys hold of it: a different answer, a different key."""
        ...


class DefaultSchedule:
    fingerprint = ""

    def decide(self, tunable: Tunable) -> Decision:
        return Decision(tunable.space.defaults())


DEFAULT_SCHEDULE = DefaultSchedule()


class TunedSchedule:
    """The best record per workload of a database; the defaults for a workload it
    does not know, or whose records no longer fit the lowering's space."""

    def __init__(self, database: TuningDatabase):
        self.database = database
        self.fingerprint = database.fingerprint

    def decide(self, tunable: Tunable) -> Decision:
        record = self.database.best(tunable.key, tunable.space)
        if record is None:
            return Decision(tunable.space.defaults())
        return Decision({k: record.config[k] for k in tunable.space.names}, record)


@dataclass
class FixedSchedule:
    """One configuration per workload key (the candidate a worker measures);
    remembers which keys were asked, so a measurement can check it hit its own."""

    configs: dict[str, Config]
    asked: set[str] = field(default_factory=set)

    @property
    def fingerprint(self) -> str:
        return repr(sorted(self.configs.items()))

    def decide(self, tunable: Tunable) -> Decision:
        self.asked.add(tunable.key)
        config = self.configs.get(tunable.key)
        if config is None:
            return Decision(tunable.space.defaults())
        if not tunable.space.legal(config):
            raise ValueError(f"config {config} is not legal for {tunable.workload.summary}")
        return Decision(dict(config), TuningRecord(tunable.workload, config, (0.0,), 0.0))


@dataclass
class RecordingSchedule:
    """Answers as `inner` does and records every tunable asked, in order."""

    inner: ScheduleSource = field(default_factory=DefaultSchedule)
    asked: list[Tunable] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def decide(self, tunable: Tunable) -> Decision:
        self.asked.append(tunable)
        return self.inner.decide(tunable)
