"""Schedules as data: the tunable workloads lowerings declare, their knob
spaces, where a lowering gets its configuration from (the defaults, or the
best record of a tuning database) and that database's JSON-lines file.

It knows no kernel: a lowering states a workload and its knobs (names and
legal values), and reads back a configuration. The tuner (tinyc.tune) only
sees that data."""

from .database import TuningDatabase, TuningLogError, TuningRecord, merge_logs
from .source import (
    DEFAULT_SCHEDULE,
    Decision,
    DefaultSchedule,
    FixedSchedule,
    RecordingSchedule,
    ScheduleSource,
    TunedSchedule,
)
from .space import Config, Knob, KnobSpace, Limit, Tunable, Workload

__all__ = ["DEFAULT_SCHEDULE", "Config", "Decision", "DefaultSchedule", "FixedSchedule", "Knob",
           "KnobSpace", "Limit", "RecordingSchedule", "ScheduleSource", "Tunable", "TunedSchedule",
           "TuningDatabase", "TuningLogError", "TuningRecord", "Workload", "merge_logs"]
