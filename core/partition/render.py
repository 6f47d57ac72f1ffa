"""Lay out and render dot source with Graphviz's `dot` command.

The binary, not a Python binding: the `graphviz` PyPI package would only wrap
the same subprocess call and still need the Debian/Homebrew package, so it
adds a dependency without removing one.
"""

from __future__ import annotations

import shutil
import subprocess

from ..errors import TinycError

FORMATS = ("svg", "png")
INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian/Ubuntu), "
                "brew install graphviz (macOS), or see https://graphviz.org/download/")
TIMEOUT_S = 300  # densenet-sized graphs lay out in seconds; a hang should not be silent


def dot_binary() -> str | None:
    return shutil.which("dot")


def render(dot_text: str, fmt: str) -> bytes:
    """The picture as `fmt` ("svg" or "png") bytes."""
    if fmt not in FORMATS:
        raise TinycError(f"cannot draw '{fmt}': one of {', '.join(FORMATS)}")
    binary = dot_binary()
    if binary is None:
        raise TinycError(f"drawing a graph needs Graphviz's 'dot' command, which is not on "
                         f"PATH: {INSTALL_HINT}")
    try:
        done = subprocess.run([binary, f"-T{fmt}"], input=dot_text.encode(),
                              capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise TinycError(f"Graphviz 'dot' took more than {TIMEOUT_S} s to lay out the "
                         "graph") from e
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise TinycError(f"Graphviz 'dot' failed (exit {done.returncode}): {message}")
    return done.stdout
