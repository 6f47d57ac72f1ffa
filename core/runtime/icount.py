"""Instructions a Linux user-mode cross artifact (aarch64, riscv64) executes in
one run, counted by qemu-user.

Debian's qemu 7.2 ships no TCG plugins (no libinsn.so), so the count comes from
qemu's own log: with `-singlestep` every translation block is one instruction,
and `-d nochain,exec` logs each block as it runs ("Trace ..."), unchained so
none is skipped. The log streams through a pipe and is counted, not stored
(tens of bytes per instruction). The count covers the whole process: the C
runtime's start-up, reading the inputs and writing the outputs included.
Bare-metal Cortex-M artifacts are counted with -icount instead
(tinyc_backend_arm.icount).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading

import numpy as np

from ..errors import TinycError
from .emulated import emulator_for, pack_tensors

TIMEOUT_S = 600.0


def user_mode_instructions(artifact, feeds: dict[str, np.ndarray]) -> int:
    """Run a compiled qemu-user artifact once and return its instructions."""
    meta = artifact.meta
    if meta.get("run", {}).get("runner") != "qemu-user":
        raise TinycError(f"the {meta['target']} artifact does not run under qemu-user")
    arrays = [np.ascontiguousarray(feeds[t["name"]], dtype=t["dtype"]) for t in meta["inputs"]]
    with tempfile.TemporaryDirectory(prefix="tinyc-icount-") as d:
        artifact.save(os.path.join(d, "art"))
        with open(os.path.join(d, "in.bin"), "wb") as f:
            f.write(pack_tensors(arrays))
        log = os.path.join(d, "exec.log")
        os.mkfifo(log)
        argv = emulator_for(meta["run"]).command(os.path.join(d, "art", meta["run"]["program"]),
                                                 "in.bin", "out.bin")
        argv[1:1] = ["-singlestep", "-d", "nochain,exec", "-D", log]
        counted: list[int] = []
        reader = threading.Thread(target=lambda: counted.append(_count_traces(log)))
        reader.start()
        r = subprocess.run(argv, cwd=d, capture_output=True, timeout=TIMEOUT_S)
        reader.join(TIMEOUT_S)
    if r.returncode != 0 or not counted:
        raise TinycError(f"counting under {' '.join(argv[:2])} failed (status {r.returncode})"
                         f": {(r.stderr or r.stdout).decode(errors='replace')[-400:]}")
    return counted[0]


def _count_traces(path: str) -> int:
    total = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            total += chunk.count(b"Trace ")
    return total
