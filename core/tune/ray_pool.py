"""Candidates built and timed as Ray tasks (`tinyc tune --ray [ADDRESS]`): a
Runner (pool.py) the tuner uses like the local pool, knowing nothing of Ray.

Placement. A measurement needs the target's hardware: its task asks for one
unit of the custom resource `tinyc-target:<target>`, where <target> is the
tinyc target name given to --target (x86, x86-avx2, aarch64...), which a node
declares when it joins:

    ray start --address HEAD:6379 --resources '{"tinyc-target:x86-avx2": 1}'

One unit per node, so a node times one candidate at a time; a measurement
also holds one CPU, so a node started with `--num-cpus 1` never builds while
it times. Builds (one CPU) run on any node. Every node needs tinyc installed.

Robustness. Each task runs its step in a node-local worker process (a
LocalPool of one, kept by the Ray worker across tasks): a candidate that
crashes or hangs costs its own result, a Failure, as in the local pool, and
Ray's retries stay for what is not the candidate's fault. A task lost with
its node or its Ray worker is retried by Ray (max_retries; a lost build
result is rebuilt from lineage), then resubmitted here a few times. Tasks
only return results: the driver alone writes the database.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import TinycError
from .pool import Failure, LocalPool, Stages

RESOURCE_PREFIX = "tinyc-target:"
_POLL_S = 0.5


def target_resource(target: str) -> str:
    """The Ray custom resource a node offers to measure `target`'s candidates."""
    return RESOURCE_PREFIX + target


def import_ray():
    try:
        import ray
    except ImportError:
        raise TinycError("--ray needs Ray, which is not installed: pip install tinyc[ray]"
                         ) from None
    return ray


class RayPool:
    """`address`: a cluster's (HEAD:6379); None: the one Ray finds (RAY_ADDRESS, a
    `ray start` on this machine) or else a new local one, where this machine
    measures; "local": always a new local one. An already connected driver
    (ray.is_initialized()) is used as it is."""

    def __init__(self, target: str, address: str | None = None, timeout_s: float = 120.0,
                 workers: int = 1, max_retries: int = 3, resubmits: int = 2,
                 node_wait_s: float = 300.0):
        self.ray = import_ray()
        self.resource = target_resource(target)
        self.target = target
        self.timeout_s = timeout_s
        self.resubmits = resubmits
        self.node_wait_s = node_wait_s
        self._owned = _connect(self.ray, address, self.resource, workers)
        self._address = address
        # (build node, measure node) of each result, by Ray node id
        self.placements: list[tuple[str, str]] = []
        self.lost = 0  # tasks lost past Ray's retries and submitted again
        self._flying: dict[Any, tuple[int, int]] = {}  # task -> (job index, resubmits)
        if not self._has_resource():
            self.close()
            raise self._no_node_error(mid_run=False)
        remote = self.ray.remote
        self._build = remote(num_cpus=1, max_retries=max_retries)(_build_task)
        self._time = remote(num_cpus=1, resources={self.resource: 1},
                            max_retries=max_retries)(_time_task)

    def run(self, fn: Callable[[Any], Any], jobs: list[Any],
            timeout_s: float | None = None) -> Iterator[tuple[int, Any]]:
        stages = fn if isinstance(fn, Stages) else Stages(_no_build, fn)
        limit = self.timeout_s if timeout_s is None else timeout_s
        flying = self._flying
        flying.update({self._submit(stages, job, limit): (i, 0) for i, job in enumerate(jobs)})
        no_node_since = None
        try:
            while flying:
                ready, _ = self.ray.wait(list(flying), num_returns=1, timeout=_POLL_S)
                if not ready:
                    no_node_since = self._wait_for_node(no_node_since)
                    continue
                index, attempt = flying.pop(ready[0])
                result = self._result(ready[0])
                if result is _LOST and attempt < self.resubmits:
                    self.lost += 1
                    flying[self._submit(stages, jobs[index], limit)] = (index, attempt + 1)
                    continue
                if result is _LOST:
                    result = Failure(f"lost {attempt + 1} times with its Ray node or worker")
                yield index, result
        finally:
            for ref in flying:  # the consumer stopped early (Ctrl-C, an error)
                with contextlib.suppress(Exception):  # it may have ended meanwhile
                    self.ray.cancel(ref, force=True)
            flying.clear()

    @property
    def in_flight(self) -> int:
        """Candidates submitted and not returned yet."""
        return len(self._flying)

    def _submit(self, stages: Stages, job: Any, limit: float):
        built = self._build.remote(stages.build, job, limit)
        return self._time.remote(stages.run, built, limit)

    def _result(self, ref) -> Any:
        ray = self.ray
        try:
            result, build_node, time_node = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # raised by the task's own code
            return Failure(f"the Ray task failed: {_first_line(e)}")
        except ray.exceptions.RayError:  # its node, worker or objects were lost
            return _LOST
        self.placements.append((build_node, time_node))
        return result

    def _has_resource(self) -> bool:
        return self.ray.cluster_resources().get(self.resource, 0) >= 1

    def _wait_for_node(self, since: float | None) -> float | None:
        """While no node offers the resource (one died, another may join),
        since when; after `node_wait_s` of that, the end of the run."""
        if self._has_resource():
            return None
        now = time.monotonic()
        if since is not None and now - since > self.node_wait_s:
            raise self._no_node_error(mid_run=True)
        return now if since is None else since

    def _no_node_error(self, mid_run: bool) -> TinycError:
        left = (f" any longer (for {self.node_wait_s:g} s; the records so far are in the "
                "log: run again to resume)") if mid_run else ""
        return TinycError(
            f"no node of the Ray cluster offers the resource '{self.resource}'{left}, which "
            f"places the measurements of {self.target} candidates: on a machine of that "
            f"kind run `ray start --address {self._address or 'HEAD:6379'} --resources "
            f"'{{\"{self.resource}\": 1}}'`")

    def close(self) -> None:
        if self._owned and self.ray.is_initialized():
            self.ray.shutdown()
        self._owned = False

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_LOST = object()


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "cause", None) or e).strip()
    return text.splitlines()[-1] if text else type(e).__name__


def _connect(ray, address: str | None, resource: str, workers: int) -> bool:
    """Connect the driver; True if this pool did (and so disconnects at close)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    local = {"resources": {resource: 1}, "num_cpus": max(1, workers),
             "include_dashboard": False}
    try:
        if address in (None, "local"):
            try:  # a new local instance: this machine measures, as without Ray
                ray.init(address=address, **local, **quiet)
            except ValueError:  # Ray found a running cluster, which has its own resources
                ray.init(**quiet)
        else:
            _check_reachable(address)
            ray.init(address=address, **quiet)
    except ConnectionError as e:
        raise TinycError(f"could not connect to the Ray cluster at {address}: {e}") from None
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Ray retries an unreachable head for minutes: look first."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise TinycError(f"no Ray cluster answers at {address} ({e.strerror or e}): start "
                         f"one with `ray start --head` there, or check the address") from None


# What runs on the nodes. A Ray worker keeps one LocalPool (one process), so a
# crashing or hanging candidate kills that process, not the Ray worker.
_NODE_POOL: LocalPool | None = None


def _in_node_pool(fn: Callable[[Any], Any], job: Any, timeout_s: float) -> Any:
    global _NODE_POOL
    if _NODE_POOL is None:
        _NODE_POOL = LocalPool(1, timeout_s)
    ((_, result),) = _NODE_POOL.run(fn, [job], timeout_s)
    return result


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _no_build(job: Any) -> Any:
    return job


def _build_task(build: Callable[[Any], Any], job: Any, timeout_s: float) -> tuple[Any, str]:
    built = job if build is _no_build else _in_node_pool(build, job, timeout_s)
    return built, _node_id()


def _time_task(run: Callable[[Any], Any], built_on: tuple[Any, str], timeout_s: float
               ) -> tuple[Any, str, str]:
    built, build_node = built_on
    result = built if isinstance(built, Failure) else _in_node_pool(run, built, timeout_s)
    return result, build_node, _node_id()
