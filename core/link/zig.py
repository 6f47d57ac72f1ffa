"""The cross toolchain: Zig's bundled clang and lld (PyPI `ziglang`).

One pip-installable package compiles and links C for every target tinyc
cross-compiles to (aarch64/riscv64 Linux with a static musl, Cortex-M bare
metal, wasm32), with no system cross compilers. Its first link for a Linux
target builds that target's musl (about a minute, cached in ~/.cache/zig);
scripts/setup warms it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys

from ..errors import TargetError

INSTALL_HINT = "pip install ziglang"


def zig_missing_reason() -> str | None:
    """None when the toolchain is installed; else how to get it."""
    if importlib.util.find_spec("ziglang") is None:
        return f"the cross toolchain is missing ({INSTALL_HINT})"
    return None


@functools.cache
def zig_command() -> list[str]:
    """The zig executable inside the ziglang package (what `python -m ziglang` runs,
    without starting another Python for each step)."""
    spec = importlib.util.find_spec("ziglang")
    if spec and spec.origin:
        exe = os.path.join(os.path.dirname(spec.origin), "zig.exe" if os.name == "nt" else "zig")
        if os.access(exe, os.X_OK):
            return [exe]
    return [sys.executable, "-m", "ziglang"]


def run_zig(args: list[str], cwd: str, what: str, timeout: float = 600) -> None:
    """`zig ARGS` in `cwd`; raise TargetError with its output when it fails.

    `what` says what was being built, for the message.
    """
    reason = zig_missing_reason()
    if reason:
        raise TargetError(f"cannot build {what}: {reason}")
    r = subprocess.run([*zig_command(), *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise TargetError(f"building {what} failed: zig {' '.join(args)}\n"
                          f"{(r.stderr or r.stdout).strip()}")
