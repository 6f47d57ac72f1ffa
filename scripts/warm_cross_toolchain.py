"""Compile a small model for every cross target once, so that zig's per-target
builds (musl for aarch64/riscv64 Linux, compiler-rt per Cortex-M core) are in its
cache (~/.cache/zig) before tests or users need them."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor

TARGETS = ("aarch64", "riscv64-rvv", "cortex-m4", "cortex-m7", "cortex-m55", "wasm32-simd",
           "wasm32")


def compile_for(target: str) -> str:
    import tinyc
    from tinyc.testing.conformance.cases import MODEL_CASES

    t0 = time.perf_counter()
    model = next(c for c in MODEL_CASES if c.name == "mlp").build()
    tinyc.compile(model, target=target)
    return f"{target} {time.perf_counter() - t0:.1f}s"


def main() -> int:
    from tinyc.link.zig import zig_missing_reason

    reason = zig_missing_reason()
    if reason:
        print(f"warm_cross_toolchain: skipped, {reason}", file=sys.stderr)
        return 0
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(compile_for, TARGETS))
    print(f"cross toolchain ready in {time.perf_counter() - t0:.0f}s ({', '.join(done)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
