"""A progress display for long compiles: silent for the usual second, then,
after ~2 s, a rich spinner on stderr naming the stages done so far and the
time spent (vgg19 takes half a minute; silence looks like a hang).

The compiler records each stage's time in CompileOptions.timings when the
stage ends; a watcher thread reads that dict, so the compiler needs no hook.
Only on a terminal: in a pipe or CI log nothing is drawn. rich comes with
the `compile` extra; without it the display is skipped.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

DELAY_S = 2.0
_TICK_S = 0.2


@contextlib.contextmanager
def compile_progress(label: str, timings: dict[str, float], enabled: bool = True
                     ) -> Iterator[None]:
    if not enabled or not sys.stderr.isatty():
        yield
        return
    try:
        from rich.console import Console
    except ModuleNotFoundError:
        yield
        return
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(Console(stderr=True), label, timings, done),
                               daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _watch(console, label: str, timings: dict[str, float], done: threading.Event) -> None:
    t0 = time.perf_counter()
    if done.wait(DELAY_S):
        return
    with console.status(_line(label, timings, t0), spinner="dots") as status:
        while not done.wait(_TICK_S):
            status.update(_line(label, timings, t0))


def _line(label: str, timings: dict[str, float], t0: float) -> str:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in list(timings.items()))
    return f"compiling {label}: {time.perf_counter() - t0:.0f}s" + (f" ({stages})" if stages
                                                                  else "")
