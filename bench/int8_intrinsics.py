"""Issue 17's int8 intrinsics on Arm and RISC-V: instructions executed per run
under qemu with each target's intrinsic and on the plain path (the same spec
with `intrinsics: []`), for a QLinearMatMul and a QLinearConv. Prints Markdown
(docs/intrinsics.md holds a copy).

    python bench/int8_intrinsics.py [--targets cortex-m4,riscv64-rvv]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import tinyc
from tinyc.testing.int8_gemms import qlinear_conv, qlinear_matmul, uint8_feeds

TARGETS = ("arm64-dotprod", "cortex-m4", "cortex-m7", "cortex-m55", "riscv64-rvv")
# a variant spec: name -> (extends, intrinsic sets), to compare two intrinsics
VARIANTS = {"arm64-dotprod (sdot only)": ("arm64-dotprod", "[neon_f32, neon_dotprod]")}


def instructions(art, feeds) -> int:
    if art.meta["run"]["runner"] == "qemu-semihosting":
        from tinyc_backend_arm.icount import instructions_per_inference

        return instructions_per_inference(art, feeds)
    from tinyc.runtime.icount import user_mode_instructions

    return user_mode_instructions(art, feeds)


def spec_file(d: str, name: str, extends: str, sets: str) -> str:
    path = os.path.join(d, f"{name.split()[0]}-{len(os.listdir(d))}.yaml")
    with open(path, "w") as f:
        f.write(f"name: v{len(os.listdir(d))}\nextends: {extends}\nintrinsics: {sets}\n")
    return path


def row(label: str, target: str, plain: str, op: str, model) -> str:
    feeds = uint8_feeds(model)
    art = tinyc.compile(model, target=target)
    (gemm,) = [r for r in art.report if r["op"] == op]
    with_it = instructions(art, feeds)
    without = instructions(tinyc.compile(model, target=plain), feeds)
    return (f"| {label} | {op} | `{gemm['intrinsic'].split('.')[-1]}` | {with_it:,} | "
            f"{without:,} | {with_it / without:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS))
    args = p.parse_args()
    models = {"QLinearMatMul": qlinear_matmul(16, 256, 64), "QLinearConv": qlinear_conv(16, 12, 32)}
    print("| target | op | intrinsic | instructions | plain path | ratio |")
    print("|---|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as d:
        runs = [(t, t, t) for t in args.targets.split(",")]
        runs += [(label, spec_file(d, label, ext, sets), ext)
                 for label, (ext, sets) in VARIANTS.items() if ext in args.targets]
        for label, target, base in runs:
            plain = spec_file(d, base, base, "[]")
            for op, model in models.items():
                print(row(label, target, plain, op, model), flush=True)


if __name__ == "__main__":
    main()
