"""Turn an LLVM module into a shared library on the host.

The library also carries the runtime's thread pool (core/runtime/c): the
pthreads pool on the host, where generated kernels call `tinyc_parallel_for`
and the loader sets the thread count with `tinyc_set_num_threads`; or the
serial implementation of the same symbols, for a library that must not depend
on libc or threads. Either way every library exports the same symbols.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import llvmlite.ir as ir

from ..errors import TargetError
from ..target.machine import CpuTarget
from .machine import emit_object, optimize

RUNTIME_C = Path(__file__).resolve().parent.parent / "runtime" / "c"


@dataclass(frozen=True)
class ThreadPool:
    source: str  # in core/runtime/c
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]


THREAD_POOLS = {
    "pthreads": ThreadPool("tinyc_threads.c", ("-pthread",), ("-pthread",)),
    # no libc at all: the library stays as self-contained as the generated code
    "serial": ThreadPool("tinyc_serial.c", ("-ffreestanding",), ("-nostdlib",)),
}


MAX_THREADS = 64  # TINYC_MAX_THREADS of tinyc_threads.c


def host_threads() -> int:
    """Threads a host library is built for by default: every core this process may
    run on, or TINYC_NUM_THREADS if that asks for more."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        wanted = int(os.environ.get("TINYC_NUM_THREADS", "0"))
    except ValueError:
        wanted = 0
    return max(1, min(MAX_THREADS, max(cores or 1, wanted)))


def find_linker() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise TargetError("no C compiler driver (cc/gcc/clang) found to link a shared library; "
                      "install gcc (apt-get install gcc)")


def pool_source(pool: str) -> Path:
    """The C file implementing the thread pool interface for `pool` ('pthreads' or
    'serial'); packagers of other targets compile it with their own toolchain."""
    if pool not in THREAD_POOLS:
        raise ValueError(f"unknown thread pool {pool!r}; expected one of {sorted(THREAD_POOLS)}")
    return RUNTIME_C / THREAD_POOLS[pool].source


def link_shared(obj: bytes, out_path: str, pool: str = "pthreads") -> None:
    """`cc -shared model.o pool.o`: the model's object plus the thread pool."""
    cc = find_linker()
    pool_obj = _pool_object(cc, pool, _digest(pool_source(pool)))
    with tempfile.TemporaryDirectory() as d:
        o, p = os.path.join(d, "model.o"), os.path.join(d, "pool.o")
        for path, data in ((o, obj), (p, pool_obj)):
            with open(path, "wb") as f:
                f.write(data)
        tmp = out_path + ".tmp"
        r = subprocess.run([cc, "-shared", *THREAD_POOLS[pool].ldflags, "-o", tmp, o, p],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise TargetError(f"linking failed:\n{r.stderr}")
        os.replace(tmp, out_path)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def _pool_object(cc: str, pool: str, digest: str) -> bytes:
    """The pool compiled once per process (per source version): compiling it costs
    ~0.1 s, more than linking a model."""
    src = pool_source(pool)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "pool.o")
        cmd = [cc, "-c", "-O2", "-fPIC", "-std=c11", *THREAD_POOLS[pool].cflags, "-o", out,
               str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise TargetError(f"compiling the thread pool ({src.name}) failed:\n{r.stderr}")
        with open(out, "rb") as f:
            return f.read()


def build_shared(module: ir.Module, target: CpuTarget, out_path: str) -> None:
    ref = optimize(module, target)
    link_shared(emit_object(ref, target), out_path)
