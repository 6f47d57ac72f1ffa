"""The tuning database: JSON lines, one measured candidate per line.

    {"workload": {...}, "key": "...", "config": {"tile": [8, 3], "kc": 256, ...},
     "times": [1.2e-4, ...], "cv": 0.01, "tinyc": "0.1.0", "error": ""}

`times` are seconds per run (the minimum is the candidate's time), `cv` the
coefficient of variation of the repeats; a candidate that crashed, hung or did
not build has an `error` and no times (kept, so a resumed tune does not try it
again). Files are readable, concatenable and mergeable; only the tuner's driver
writes them, appending whole lines with an fsync (records already written
survive a Ctrl-C), and merge writes a temporary file renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TinycError
from .space import Config, KnobSpace, Workload, config_id


class TuningLogError(TinycError):
    """A tuning log that cannot be read: names the file and line."""


@dataclass(frozen=True)
class TuningRecord:
    workload: Workload
    config: Config
    times: tuple[float, ...]
    cv: float
    version: str = ""
    error: str = ""

    @property
    def key(self) -> str:
        return self.workload.key

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("inf")

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.times)

    def to_json(self) -> dict:
        return {"workload": self.workload.to_json(), "key": self.key, "config": self.config,
                "times": list(self.times), "cv": self.cv,
                "tinyc": self.version or self.workload.version, "error": self.error}

    @staticmethod
    def from_json(d: dict) -> TuningRecord:
        workload = Workload.from_json(d["workload"])
        if "key" in d and d["key"] != workload.key:
            raise ValueError(f"key {d['key']} does not match its workload ({workload.key})")
        config = d["config"]
        if not isinstance(config, dict):
            raise ValueError("config must be an object")
        times = tuple(float(t) for t in d.get("times", ()))
        return TuningRecord(workload, config, times, float(d.get("cv", 0.0)),
                            str(d.get("tinyc", "")), str(d.get("error", "")))


MARGIN = 0.03  # a tuned schedule must be this much faster than the default to replace it


class TuningDatabase:
    def __init__(self, records: Iterable[TuningRecord] = (), sources: tuple[str, ...] = ()):
        self.records: list[TuningRecord] = []
        self._by_key: dict[str, list[TuningRecord]] = {}
        self.sources = sources  # the files it was read from
        for r in records:
            self.add(r)

    def add(self, record: TuningRecord) -> None:
        self.records.append(record)
        self._by_key.setdefault(record.key, []).append(record)

    @staticmethod
    def load(*paths: str | os.PathLike) -> TuningDatabase:
        db = TuningDatabase(sources=tuple(str(p) for p in paths))
        for path in paths:
            for r in read_records(path):
                db.add(r)
        return db

    def keys(self) -> list[str]:
        """The workloads it has records of, in the order first seen."""
        return list(self._by_key)

    def of(self, key: str) -> list[TuningRecord]:
        return list(self._by_key.get(key, ()))

    def tried(self, key: str) -> set[str]:
        """The configs of a workload already measured (or failed)."""
        return {config_id(r.config) for r in self._by_key.get(key, ())}

    def best(self, key: str, space: KnobSpace | None = None) -> TuningRecord | None:
        """The fastest successful record of a workload (legal in `space` if given).
        With `space`, a record beats the defaults' own record only by more than
        the measurement noise (MARGIN, or twice either's coefficient of
        variation): the minimum over hundreds of candidates otherwise picks the
        luckiest timing of a schedule no faster than the default, and the
        model gets slower (x86-avx2 resnet50, 2 threads: 1.125x before this)."""
        good = [r for r in self._by_key.get(key, ())
                if r.ok and (space is None or space.legal(r.config))]
        best = min(good, key=lambda r: r.best, default=None)
        if best is None or space is None:
            return best
        default_id = config_id(space.defaults())
        defaults = [r for r in good if config_id(r.config) == default_id]
        if not defaults or best.workload.cost != "time":
            return best  # cycles are exact; no default measured: nothing to compare
        default = min(defaults, key=lambda r: r.best)
        margin = max(MARGIN, 2 * best.cv, 2 * default.cv)
        return best if best.best < default.best * (1 - margin) else default

    @property
    def fingerprint(self) -> str:
        """Changes whenever a best record does (for the compile cache's keys)."""
        h = hashlib.sha256()
        for key in sorted(self._by_key):
            best = self.best(key)
            if best is not None:
                h.update(f"{key} {config_id(best.config)}\n".encode())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.records)


def read_records(path: str | os.PathLike) -> list[TuningRecord]:
    out = []
    with open(path, encoding="utf-8") as f:
        try:
            lines = f.readlines()
        except UnicodeDecodeError:
            raise TuningLogError(f"{path}: not a text file (a tuning log is JSON lines)") from None
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(TuningRecord.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as e:
                what = "not JSON" if isinstance(e, json.JSONDecodeError) else \
                    f"not a tuning record ({type(e).__name__}: {e})"
                raise TuningLogError(f"{path}:{lineno}: {what}") from None
    return out


def append_records(path: str | os.PathLike, records: Iterable[TuningRecord]) -> None:
    """Whole lines, flushed and fsynced: an interrupted tune leaves complete records."""
    lines = "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in records)
    if not lines:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def write_records(path: str | os.PathLike, records: Iterable[TuningRecord]) -> None:
    """The whole file at once: a temporary file renamed into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r.to_json(), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_logs(inputs: Iterable[str | os.PathLike], output: str | os.PathLike) -> int:
    """Every record of `inputs` in one file, exact duplicates once; the count written."""
    seen, merged = set(), []
    for path in inputs:
        for r in read_records(path):
            ident = json.dumps(r.to_json(), sort_keys=True)
            if ident not in seen:
                seen.add(ident)
                merged.append(r)
    write_records(output, merged)
    return len(merged)
