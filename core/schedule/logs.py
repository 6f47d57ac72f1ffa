"""Which tuning logs a compile applies: the default database in the cache
folder (paths.default_tuning_log) when it exists, plus a log the user names
(`tinyc compile --tuning-log FILE`); the best record over all of them wins."""

from __future__ import annotations

import os
from pathlib import Path

from ..paths import default_tuning_log
from .database import TuningDatabase
from .source import DEFAULT_SCHEDULE, ScheduleSource, TunedSchedule

_LOADED: dict[tuple, TuningDatabase] = {}  # by the files' (path, size, mtime): read once


def schedule_for(tuning_log: str | os.PathLike | None = None,
                 use_default: bool = True) -> ScheduleSource:
    paths = []
    default = default_tuning_log() if use_default else None
    if default is not None and default.is_file():
        paths.append(default)
    if tuning_log is not None:
        given = Path(tuning_log)
        if not given.is_file():  # an OSError the CLI reports with the file's name
            raise FileNotFoundError(2, "no such tuning log", str(given))
        paths.append(given)
    if not paths:
        return DEFAULT_SCHEDULE
    return TunedSchedule(_load(paths))


def _load(paths: list[Path]) -> TuningDatabase:
    stamp = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    if stamp not in _LOADED:
        _LOADED.clear()  # one set of logs in use at a time: keep memory flat
        _LOADED[stamp] = TuningDatabase.load(*paths)
    return _LOADED[stamp]
