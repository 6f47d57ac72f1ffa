"""Instructions a Cortex-M artifact executes per inference, counted by qemu.

qemu-system-arm's `-icount shift=0` makes each instruction take 1 ns of
virtual time; the runner (cortex_m/startup.c) counts the run in SysTick ticks
of that clock and prints them over semihosting. Instructions = ticks * 1e9 /
the board's clock, to within one tick (25 MHz: 40 instructions). Debian's qemu
7.2 ships no TCG plugins (no libinsn.so), hence this way.

    python -m tinyc_backend_arm.icount MODEL.onnx cortex-m4 [cortex-m55 ...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from tinyc.plugin import TinycError, pack_tensors, qemu_semihosting

from .cortex_m import BOARDS

TICKS = re.compile(rb"tinyc-systick (\d+)")
TIMEOUT_S = 900.0


def instructions_per_inference(artifact, feeds: dict[str, np.ndarray]) -> int:
    """Run a compiled Cortex-M artifact (tinyc.compile(..., target=cortex-m*))
    once under qemu with -icount and return the instructions its run took."""
    meta = artifact.meta
    if "run" not in meta:
        raise TinycError(f"the {meta['target']} artifact has no runner to count")
    board = next(b for b in BOARDS.values() if b.machine == meta["run"]["machine"])
    emulator = qemu_semihosting(board.machine)
    arrays = [np.ascontiguousarray(feeds[t["name"]], dtype=t["dtype"]) for t in meta["inputs"]]
    with tempfile.TemporaryDirectory(prefix="tinyc-icount-") as d:
        artifact.save(os.path.join(d, "art"))
        with open(os.path.join(d, "in.bin"), "wb") as f:
            f.write(pack_tensors(arrays))
        argv = emulator.command(os.path.join(d, "art", meta["run"]["program"]), "in.bin",
                                "out.bin")
        argv[1:1] = ["-icount", "shift=0"]
        r = subprocess.run(argv, cwd=d, capture_output=True, timeout=TIMEOUT_S)
    found = TICKS.search(r.stdout + r.stderr)
    if r.returncode != 0 or not found:
        raise TinycError(f"counting under {' '.join(argv[:3])} failed (status {r.returncode})"
                         f": {(r.stderr or r.stdout).decode(errors='replace')[-400:]}")
    return int(found.group(1)) * 1_000_000_000 // board.clock_hz


def main(argv: list[str]) -> int:
    import onnx

    import tinyc

    model = onnx.load(argv[0])
    for target in argv[1:]:
        art = tinyc.compile(model, target=target)
        feeds = {i.name: np.random.default_rng(0).standard_normal(
            [d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
            for i in model.graph.input[:1]}  # seeded, as the MLPerf Tiny tests feed it
        print(f"{target}: {instructions_per_inference(art, feeds):,} instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
