"""Decode step time against past length: a shared KV cache keeps it flat.

    python bench/llm_kv_curve.py [--past 16,64,256,512,1024] [--layers 4 --hidden 768 --heads 12]
                                 [--vocab 1000] [--threads 1] [--reps 200]

One decode step (1 new token) of a GPT-2 from `transformers` (random weights,
tinyc.testing.llm_models) after a past of P rows, for each P, three ways in
the same run:

- tinyc shared: IO binding, each past/present pair bound to one buffer of
  max(P) + 1 rows (IOBinding.bind_kv_cache): the step writes the new row only;
- tinyc copying: sess.run with the past as arrays: the presents are new
  arrays the past is copied into, as Concat(past, new) does;
- onnxruntime: sess.run with the past as arrays (its Concat copies).

Per P: the median of --reps steps after a warm-up, every engine at every P
taking turns step by step (a load that comes and goes weighs on all alike);
and max/min over P per engine (the acceptance of issue 11: within 1.5x from
16 to 1024 with the shared cache, on a model where attention is not
dominant). Check `uptime` first: figures from a loaded machine say little.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import tinyc
from tinyc.testing.llm_models import empty_past, gpt2_with_kv_cache


def feeds_for(path: str, past_len: int, vocab: int, rng) -> dict[str, np.ndarray]:
    past = {n: rng.standard_normal(a.shape[:2] + (past_len,) + a.shape[3:]).astype(np.float32)
            for n, a in empty_past(path).items()}
    return {"input_ids": rng.integers(0, vocab, (1, 1)).astype(np.int64),
            "attention_mask": np.ones((1, past_len + 1), np.int64), **past}


def median_ms(steps: list, reps: int) -> list[float]:
    """Median ms of each step, the steps taking turns."""
    for step in steps:
        for _ in range(max(3, reps // 10)):
            step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(reps):
        for step, t in zip(steps, times, strict=True):
            t0 = time.perf_counter()
            step()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def shared_step(sess, feeds: dict, buffers: dict, past_len: int):
    io = sess.io_binding()
    io.bind_output("logits")
    for name in ("input_ids", "attention_mask"):
        io.bind_cpu_input(name, feeds[name])
    for past, buf in buffers.items():
        buf[..., :past_len, :] = feeds[past]
    present = {p: "present." + p.split(".", 1)[1] for p in buffers}

    def step():
        for past, buf in buffers.items():  # as a decode loop binds every step
            io.bind_kv_cache(past, present[past], buf, past_len, 1)
        sess.run_with_iobinding(io)

    return step


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--past", default="16,64,256,512,1024")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    lengths = [int(p) for p in args.past.split(",")]
    path = gpt2_with_kv_cache(layers=args.layers, hidden=args.hidden, heads=args.heads,
                              vocab=args.vocab, positions=max(2048, max(lengths) + 1))
    rng = np.random.default_rng(0)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    ref = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(path, target="x86", options=tinyc.CompileOptions(
        threads=args.threads, share_kv_cache=True))
    concat = tinyc.InferenceSession(path, target="x86",  # the cache copied by Concat
                                    options=tinyc.CompileOptions(threads=args.threads))
    capacity = max(lengths) + 1
    buffers = {n: np.zeros(a.shape[:2] + (capacity,) + a.shape[3:], np.float32)
               for n, a in empty_past(path).items()}
    print(f"GPT-2 {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab "
          f"{args.vocab}; {args.threads} thread(s); median of {args.reps} decode steps; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'past':>6} {'tinyc shared':>13} {'tinyc copying':>14} {'onnxruntime':>12}  ms/step")
    steps = []  # per past length: shared, copying, onnxruntime
    for p in lengths:
        feeds = feeds_for(path, p, args.vocab, rng)
        steps += [shared_step(sess, feeds, dict(buffers), p),
                  lambda f=feeds: concat.run(None, f), lambda f=feeds: ref.run(None, f)]
    ms = median_ms(steps, args.reps)
    rows = {k: ms[j::3] for j, k in enumerate(("tinyc shared", "tinyc copying", "onnxruntime"))}
    for i, p in enumerate(lengths):
        print(f"{p:>6} " + " ".join(f"{rows[k][i]:>{w}.3f}" for k, w in
                                    zip(rows, (13, 14, 12), strict=True)))
    print("max/min " + ", ".join(f"{k} {max(v) / min(v):.2f}x" for k, v in rows.items())
          + f"; compiles {sess.compile_count}; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
