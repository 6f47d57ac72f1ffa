"""Worker processes that build and time candidates, so that a candidate that
crashes (a segfault in generated code, an abort) or hangs costs one result,
not the tune.

A Runner takes a function and jobs and yields (index, result) as results come
in, a Failure for a job whose worker died or ran past the timeout. The local
pool keeps `workers` spawned processes (spawn: no forked LLVM or thread-pool
state), each importing the measuring code once before its first job; a worker
that dies or hangs is killed and replaced. They build in parallel but time
alone (timing_alone: no other build or timing meanwhile), so a measurement
has the cores to itself.

A distributed backend implements the same two methods (ray_pool.py): when
the function is `Stages`, its build runs anywhere and its run on a machine
of the target's kind; here both run in one worker.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from ..errors import TinycError

_POLL_S = 0.2


@dataclass(frozen=True)
class Failure:
    reason: str


@dataclass(frozen=True)
class Stages:
    """A job done in two steps: `build(job)` needs any machine with tinyc,
    `run(built)` the target's hardware (`run` passes through a final result
    that `build` returns). Called, it does both in this process."""

    build: Callable[[Any], Any]
    run: Callable[[Any], Any]

    def __call__(self, job: Any) -> Any:
        return self.run(self.build(job))


class Runner(Protocol):
    def run(self, fn: Callable[[Any], Any], jobs: list[Any],
            timeout_s: float | None = None) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


# Candidates build in parallel, but a run is timed alone: no other timing and
# no build on the machine meanwhile (they would share its cores). A build holds
# one of `workers` slots; a timing holds the timing lock and every slot. Set in
# each worker at its start.
_TIMING_LOCK: Any = None
_BUILD_SLOTS: Any = None
_SLOTS = 0


@contextlib.contextmanager
def building() -> Iterator[None]:
    if _BUILD_SLOTS is None:
        yield
        return
    with _BUILD_SLOTS:
        yield


@contextlib.contextmanager
def timing_alone() -> Iterator[None]:
    """Run the block while no other worker of the pool builds or times."""
    if _TIMING_LOCK is None:
        yield
        return
    with _TIMING_LOCK:
        for _ in range(_SLOTS):
            _BUILD_SLOTS.acquire()
        try:
            yield
        finally:
            for _ in range(_SLOTS):
                _BUILD_SLOTS.release()


def _worker_main(conn: Connection, preload: str, shared: tuple = (None, None, 0)) -> None:
    global _TIMING_LOCK, _BUILD_SLOTS, _SLOTS
    _TIMING_LOCK, _BUILD_SLOTS, _SLOTS = shared
    # Ctrl-C reaches the whole process group: the driver stops the workers,
    # they do not each print a KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if preload:
        importlib.import_module(preload)
    conn.send("ready")
    while True:
        message = conn.recv()
        if message is None:
            return
        fn, job = message
        try:
            result = fn(job)
        except Exception as e:  # a candidate that does not build: a result like any other
            result = Failure(f"{type(e).__name__}: {e}")
        conn.send(result)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: int | None = None  # the index of the job it runs
    started: float = 0.0


class LocalPool:
    def __init__(self, workers: int = 1, timeout_s: float = 120.0,
                 preload: str = "tinyc.tune.measure"):
        self.size = max(1, workers)
        self.timeout_s = timeout_s
        self.preload = preload
        self._ctx = mp.get_context("spawn")
        self._shared = (self._ctx.Lock(), self._ctx.Semaphore(self.size), self.size)
        self._workers: list[_Worker] = []

    def run(self, fn: Callable[[Any], Any], jobs: list[Any],
            timeout_s: float | None = None) -> Iterator[tuple[int, Any]]:
        """Results as they come; `timeout_s` overrides the pool's for these jobs."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        pending = deque(range(len(jobs)))
        while len(self._workers) < self.size:
            self._workers.append(self._start())
        while pending or any(w.job is not None for w in self._workers):
            for w in self._workers:
                if w.job is None and pending:
                    w.job, w.started = pending.popleft(), time.monotonic()
                    w.conn.send((fn, jobs[w.job]))
            busy = [w for w in self._workers if w.job is not None]
            ready = wait([w.conn for w in busy], timeout=_POLL_S)
            for w in busy:
                if w.conn in ready:
                    yield self._collect(w)
                elif time.monotonic() - w.started > limit:
                    yield self._replace(w, f"timed out after {limit:g} s")

    def _collect(self, w: _Worker) -> tuple[int, Any]:
        try:
            result = w.conn.recv()
        except (EOFError, OSError):
            w.process.join(1)
            return self._replace(w, f"worker crashed (exit code {w.process.exitcode})")
        index, w.job = w.job, None
        return index, result

    def _replace(self, w: _Worker, reason: str) -> tuple[int, Any]:
        index = w.job
        self._stop(w)
        self._workers[self._workers.index(w)] = self._start()
        return index, Failure(reason)

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main,
                                    args=(child, self.preload, self._shared), daemon=True)
        process.start()
        child.close()
        try:
            ok = parent.poll(max(60.0, self.timeout_s)) and parent.recv() == "ready"
        except (EOFError, OSError):
            ok = False
        if not ok:
            process.kill()
            raise TinycError(f"a tuning worker did not start (importing {self.preload})")
        return _Worker(process, parent)

    def _stop(self, w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join(5)
        w.conn.close()

    def close(self) -> None:
        for w in self._workers:
            try:
                if w.job is None and w.process.is_alive():
                    w.conn.send(None)
                    w.process.join(2)
            except OSError:
                pass
            self._stop(w)
        self._workers = []

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
