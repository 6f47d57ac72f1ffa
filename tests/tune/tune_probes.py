"""Test hooks a tuning worker runs before a candidate (MeasureJob.probe):
imported by name in the spawned worker, so they live in a module of their own."""

from __future__ import annotations

import os
import time


def abort_unless(default: dict, job) -> None:
    """Every candidate but `default` dies as a segfaulting kernel would
    (bind `default` with functools.partial)."""
    if job.config != default:
        os.abort()


def abort(job) -> None:
    os.abort()


def hang(job) -> None:
    time.sleep(3600)


def square(x: int) -> int:
    """A cheap job for the pool's own tests."""
    if x == 13:
        os.abort()
    if x == 17:
        time.sleep(3600)
    if x == 19:
        raise ValueError("nineteen is not wanted")
    return x * x


def build_or_time(x: int) -> tuple[str, float, float]:
    """Even jobs "build" (in a build slot), odd ones "time" (alone)."""
    from tinyc.tune.pool import building, timing_alone

    kind, guard = ("build", building()) if x % 2 == 0 else ("time", timing_alone())
    with guard:
        start = time.monotonic()
        time.sleep(0.4)
        return kind, start, time.monotonic()
