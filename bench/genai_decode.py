"""Decode speed of a Llama-style model built by onnxruntime-genai's model builder
(tinyc.testing.genai_models.llama_genai), tinyc against onnxruntime at 1 thread
and at all threads.

    python bench/genai_decode.py [--precision int4|fp32] [--accuracy-level 0|4]
                                 [--layers 8 --hidden 1024] [--init-std 0.02]
                                 [--tokens 64] [--prompt 32] [--rounds 2] [--threads 1,all]
                                 [--agreement]

Prints the load average first: figures taken with a load above ~1.5 on this
shared machine are not worth reporting. Both engines stay loaded and run
interleaved rounds after one warm-up round each; prefill ms and decode ms/token
(median step of a round) are medians over rounds, and the ratio tinyc /
onnxruntime (below 1: tinyc faster).
Numbers for notes, not a test.

--agreement times nothing: at 1 thread, per step, onnxruntime's top-2 logit gap
and tinyc's max |difference| from onnxruntime's logits (both / the logits'
range, tinyc fed onnxruntime's tokens), then whether greedy decoding gives the
same tokens; a step whose gap is below the difference is a near-tie.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import tinyc
from tinyc.compiler import CompileOptions
from tinyc.testing.genai_models import genai_forced_logits, genai_greedy_decode, llama_genai


def _round(session, folder: str, prompt: list[int], tokens: int):
    time.sleep(0.1)  # onnxruntime's workers spin ~40 ms after a run: let them sleep
    result = genai_greedy_decode(session, folder, prompt, tokens, keep_logits=False)
    return result.prefill_s * 1e3, statistics.median(result.decode_s) * 1e3, result.tokens


def _thread_counts(text: str) -> list[int]:
    return [(os.cpu_count() or 1) if t == "all" else int(t) for t in text.split(",")]


def _compare(ort, folder: str, prompt: list[int], args, threads: int) -> None:
    """Rounds interleaved (onnxruntime, tinyc, onnxruntime, ...) so that both engines
    see the same machine; each figure is the median over rounds."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    ref = ort.InferenceSession(f"{folder}/model.onnx", so, providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(f"{folder}/model.onnx", target="x86",
                                  options=CompileOptions(threads=threads))
    engines = {"onnxruntime": ref, "tinyc": sess}
    runs: dict[str, list] = {name: [] for name in engines}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, session in engines.items():
            result = _round(session, folder, prompt, args.tokens)
            if r:
                runs[name].append(result)
    (o_pre, o_dec), (t_pre, t_dec) = ([statistics.median(x[i] for x in runs[n]) for i in (0, 1)]
                                      for n in engines)
    o_tok, t_tok = (runs[n][-1][2] for n in engines)
    ratios = sorted(t[1] / o[1] for o, t in zip(runs["onnxruntime"], runs["tinyc"], strict=True))
    level = f" accuracy_level {args.accuracy_level}" if args.precision == "int4" else ""
    print(f"{args.precision}{level} {args.layers} layers hidden {args.hidden} init_std "
          f"{args.init_std}, {args.prompt}-token prompt, {args.tokens} tokens, {threads} thread(s)")
    print(f"  onnxruntime  prefill {o_pre:8.2f} ms  decode {o_dec:7.3f} ms/token")
    print(f"  tinyc        prefill {t_pre:8.2f} ms  decode {t_dec:7.3f} ms/token "
          f"(compiles {sess.compile_count})")
    print(f"  ratio tinyc/onnxruntime  prefill {t_pre / o_pre:.2f}  decode {t_dec / o_dec:.2f}"
          f"  same tokens: {o_tok == t_tok}")
    print(f"  decode ratio per round: {' '.join(f'{x:.2f}' for x in ratios)}")


def _agreement(ort, folder: str, prompt: list[int], tokens: int) -> None:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(f"{folder}/model.onnx", so, providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(f"{folder}/model.onnx", target="x86",
                                  options=CompileOptions(threads=1))
    want = genai_greedy_decode(ref, folder, prompt, tokens)
    got = genai_forced_logits(sess, folder, prompt, want.tokens)
    print("step  top-2 gap  max|diff|  (/ range)  same token")
    for i, (w, g) in enumerate(zip(want.logits, got, strict=True)):
        span = float(w.max() - w.min())
        top = np.sort(w)[-2:]
        same = int(np.argmax(g)) == want.tokens[i]
        print(f"{i:4d}  {(top[1] - top[0]) / span:9.2e}  {float(np.abs(g - w).max()) / span:9.2e}"
              f"  {'yes' if same else 'NO'}")
    free = genai_greedy_decode(sess, folder, prompt, tokens, keep_logits=False).tokens
    differ = [i for i, (a, b) in enumerate(zip(free, want.tokens, strict=True)) if a != b]
    first = differ[0] if differ else None
    print(f"greedy decoding: same tokens {free == want.tokens}"
          + ("" if first is None else f", first differs at step {first}"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", default="int4", choices=["int4", "fp32"])
    p.add_argument("--accuracy-level", type=int, default=0, choices=[0, 4],
                   help="int4: 0 computes in float32; 4 (the builder's CPU default) "
                        "quantizes activations to int8 per block")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--init-std", type=float, default=0.02,
                   help="std of the random weights (transformers' default 0.02; larger "
                        "weights give less flat logits)")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", default="1,all", help="thread counts, 'all' = every core")
    p.add_argument("--agreement", action="store_true",
                   help="no timing: per-step logit agreement with onnxruntime")
    args = p.parse_args()
    import onnxruntime as ort

    print(f"load average {os.getloadavg()[0]:.2f}")
    heads = max(args.hidden // 64, 1)
    folder = llama_genai(args.precision, layers=args.layers, hidden=args.hidden, heads=heads,
                         kv_heads=max(heads // 4, 1), intermediate=args.hidden * 11 // 4,
                         vocab=4000, accuracy_level=args.accuracy_level, init_std=args.init_std)
    prompt = [int(t) for t in np.random.default_rng(0).integers(3, 3900, args.prompt)]
    if args.agreement:
        _agreement(ort, folder, prompt, args.tokens)
        return
    for threads in _thread_counts(args.threads):
        _compare(ort, folder, prompt, args, threads)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
