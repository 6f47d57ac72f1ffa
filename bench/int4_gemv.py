"""The int4 weight-only GEMV of issue 12: Y[1, N] = A[1, K] @ W^T, W [N, K] in
4-bit blocks of 32 (com.microsoft MatMulNBits), tinyc against onnxruntime
at one accuracy_level (0: float32 compute; 4: activations quantized to int8
per block, onnxruntime's default for the builder's CPU models), at 1 thread,
with the machine's read bandwidth for scale.

    python bench/int4_gemv.py [--k 4096 --n 4096] [--block 32] [--threads 1] [--level 0|4]
                              [--chain 8]

--chain C puts C such products with their own weights in one model and reports
the time per product: with C * K * N / 2 bytes above the last-level cache (8 x
8 MB against this Zen 4's 32 MB L3) the weights stream from memory, as in a
real decode step; with C = 1 they stay in the cache between calls.

Times are the best of 5 rounds of 50 products, in thread CPU time (time.thread_time:
time the process is descheduled on a shared machine does not count), per call,
session overhead included. GB/s counts the packed weight bytes (K * N / 2).
The read bandwidth is numpy summing a 256 MB array per thread (best of 5). Numbers for
notes, not a test; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np

import tinyc
from tinyc.compiler import CompileOptions

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "llm"))
from genai_cases import Case, model, quantize  # noqa: E402


def _best(fn, calls: int = 50) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - t0) / calls)
    return best


def read_bandwidth(threads: int = 1) -> float:
    """GB/s of `threads` threads each summing its own 256 MB array at once (numpy
    releases the GIL while it sums), best of 5."""
    arrays = [np.ones(64 * 1024 * 1024, np.float32) for _ in range(threads)]
    best = float("inf")
    for _ in range(5):
        workers = [threading.Thread(target=a.sum) for a in arrays]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t0)
    return sum(a.nbytes for a in arrays) / best / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--block", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--level", type=int, default=0, choices=(0, 4))
    p.add_argument("--m", type=int, default=1, help="rows of A (1: a decode step)")
    p.add_argument("--chain", type=int, default=1, help="products per call, own weights")
    args = p.parse_args()
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w = rng.standard_normal((args.n, args.k)).astype(np.float32)
    cases = []
    for _ in range(args.chain):
        q, s, _ = quantize(w, 4, args.block, "none", rng)
        q = rng.integers(0, 256, q.shape, dtype=np.uint8)  # distinct weights per product
        a = rng.standard_normal((args.m, args.k)).astype(np.float32)
        cases.append(Case("MatMulNBits", [a, q, s], (1, 2),
                          {"K": args.k, "N": args.n, "bits": 4, "block_size": args.block,
                           "accuracy_level": args.level}))
    proto, feeds, names = model(cases)
    data = proto.SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    ref = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(data, target="x86", options=CompileOptions(threads=args.threads))
    err = max(float(np.abs(r - t).max())
              for r, t in zip(ref.run(names, feeds), sess.run(names, feeds), strict=True))
    weight_gb = args.k * args.n / 2 / 1e9
    print(f"load average {os.getloadavg()[0]:.2f}; read bandwidth at {args.threads} thread(s) "
          f"{read_bandwidth(args.threads):.1f} GB/s")
    for name, s_ in (("onnxruntime", ref), ("tinyc", sess)):
        t = _best(lambda s_=s_: s_.run(names, feeds), max(1, 50 // args.chain)) / args.chain
        print(f"  {name:12s} {t * 1e6:9.1f} us  {weight_gb / t:6.1f} GB/s of int4 weights")
    print(f"  max |tinyc - onnxruntime| {err:.2e}; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
