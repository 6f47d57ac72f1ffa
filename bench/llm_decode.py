"""LLM decode: greedy decoding of a GPT-2 (or a Llama) from `transformers` with
its KV cache, tinyc against onnxruntime, at 1 thread and at all threads.

    python bench/llm_decode.py [--tokens 128] [--prompt 8] [--layers 4 --hidden 256 --heads 4]
                               [--vocab 1000] [--exporter dynamo|torchscript] [--big]
                               [--arch llama [--kv-heads 2 --intermediate 512
                                              --attention eager|sdpa]]
                               [--threads N] [--no-tinyc] [--max-compiles 6] [--diagnose]

The model (tinyc.testing.llm_models.gpt2_with_kv_cache, or with --arch llama
tinyc.testing.llama_export.llama_with_kv_cache: seeded random weights, KV cache
as past_* inputs and present_* outputs, symbolic batch / seq / past) decodes
N tokens after a prompt of seeded random ids: step 0 is the prefill
(the whole prompt, past length 0), each next step one token with the presents
fed back. Figures: prefill ms; decode ms/token (median, p90, max) and tokens/s;
ratios tinyc / onnxruntime (below 1.0: tinyc is faster) of the decode median
and of the prefill. Each engine decodes once to warm up (its arena, threads,
and tinyc's compiles), then `--rounds` measured decodes; the figures are over
the steps of all measured rounds. Configurations run one after the other, each
alone: onnxruntime 1T, tinyc 1T, onnxruntime all-T, tinyc all-T (onnxruntime's
workers spin after a run and would take a core from whatever runs next; its
session is closed before tinyc's runs).

tinyc runs through tinyc.InferenceSession(path, options=CompileOptions(threads=n)).
The model compiles once, symbolically (the prefill's call; every decode step
reuses it). Should a model fall back to per-shape compiles, the tinyc decode
stops after --max-compiles compiles and its figures are reported as
unavailable, with compile_count, symbolic_fallback and the time per compile.

--diagnose prints where tinyc's symbolic pipeline stops on the model and
exits: op counts, dim_params, the values whose dims ONNX shape inference could
not relate to the inputs (unk__N, or an expression such as 'past + seq') with
the shape chains that produce them, the error of a symbolic compile, and a
per-shape compile checked against onnxruntime on a decode step.

--big: GPT-2 small's shape (12 layers, hidden 768, 12 heads, vocab 50257);
its export takes about a minute the first time. Numbers for notes, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import tinyc
from tinyc.testing.llm_models import (
    DecodeResult,
    empty_past,
    gpt2_with_kv_cache,
    greedy_decode,
)


class TooManyCompiles(Exception):
    pass


def ort_session(path: str, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class TinycRunner:
    """A tinyc session as greedy_decode's run_step, stopping a per-shape decode
    after `max_compiles` compiles (each costs seconds)."""

    def __init__(self, path: str, threads: int, max_compiles: int):
        self.threads = threads
        self.max_compiles = max_compiles
        self.compile_s: list[float] = []
        self.warmed: int | None = None  # compiles done by the end of the warm-up
        self.sess = tinyc.InferenceSession(path, target="x86",
                                           options=tinyc.CompileOptions(threads=threads))

    def __call__(self, feeds):
        before = self.sess.compile_count
        if before >= self.max_compiles and self._would_compile(feeds):
            raise TooManyCompiles(f"stopped after {before} compiles")
        t0 = time.perf_counter()
        outs = self.sess.run(None, feeds)
        if self.sess.compile_count > before:
            self.compile_s.append(time.perf_counter() - t0)
        return outs

    def _would_compile(self, feeds) -> bool:
        """Whether a run of these feeds compiles: a per-shape session has no
        artifact for these shapes; a symbolic one none whose guards admit them."""
        s = self.sess
        try:
            shapes = s._shapes_of(feeds)
            if s.symbolic_fallback is None:
                values = s._symbol_values(shapes)
                return not any(m.accepts(tuple(values[k] for k in m.symbols))
                               for m in s._specializations)
            key = tuple(sorted((k, tuple(v)) for k, v in shapes.items()))
            return key not in s._compiled
        except Exception:  # a private API that changed: assume it compiles
            return True

    @property
    def compile_count(self) -> int:
        return self.sess.compile_count

    @property
    def symbolic_fallback(self):
        return self.sess.symbolic_fallback


def decode_rounds(run_step, prompt, tokens, past, rounds, start_past=0
                  ) -> tuple[DecodeResult, list[int]]:
    """One warm-up decode (short), then `rounds` measured ones, merged: the
    median prefill and every decode step; and the tokens of the first round."""
    greedy_decode(run_step, prompt, min(tokens, 8), past=past, start_past=start_past)
    if hasattr(run_step, "warmed"):
        run_step.warmed = run_step.compile_count
    runs = [greedy_decode(run_step, prompt, tokens, past=past, start_past=start_past)
            for _ in range(rounds)]
    prefill = statistics.median(r.prefill_s for r in runs)
    return DecodeResult(runs[0].tokens, [prefill] + [t for r in runs for t in r.decode_s]), \
        runs[0].tokens


def run_bench(args) -> None:
    import onnxruntime as ort

    path = model_path(args)
    rng = np.random.default_rng(0)
    prompt = [int(t) for t in rng.integers(0, args.vocab, args.prompt)]
    past = empty_past(path)
    print(f"tinyc {tinyc.__version__} vs onnxruntime {ort.__version__}; {os.cpu_count()} cores, "
          f"all-T = {args.threads} threads")
    kind = "GPT-2" if args.arch == "gpt2" else \
        f"Llama ({args.kv_heads} kv heads, {args.attention} attention)"
    print(f"{kind} {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab "
          f"{args.vocab}, exporter {args.exporter}; prompt {args.prompt} tokens, "
          f"{args.tokens} decoded; {args.rounds} measured round(s) after a warm-up"
          + (f"; past starts with {args.start_past} masked row(s)" if args.start_past else ""))
    print(f"model: {path}")
    rows: dict[tuple[str, int], DecodeResult | str] = {}
    tokens: dict[tuple[str, int], list[int]] = {}
    extra: dict[int, str] = {}
    thread_counts = [1] + ([args.threads] if args.threads != 1 else [])
    for n in thread_counts:
        o = ort_session(path, n)
        rows["onnxruntime", n], tokens["onnxruntime", n] = decode_rounds(
            o, prompt, args.tokens, past, args.rounds, args.start_past)
        del o
        sys.stdout.flush()
        if args.no_tinyc:
            continue
        runner = None
        try:
            runner = TinycRunner(path, n, args.max_compiles)
            rows["tinyc", n], tokens["tinyc", n] = decode_rounds(
                runner, prompt, args.tokens, past, args.rounds, args.start_past)
        except TooManyCompiles as e:
            rows["tinyc", n] = f"unavailable: {e}"
        except Exception as e:  # tinyc cannot run the model: say why, go on
            rows["tinyc", n] = f"unavailable: {type(e).__name__}: {_first_line(e)}"
        if runner is not None:
            per = (f"{statistics.median(runner.compile_s):.2f} s per compile"
                   if runner.compile_s else "no compile timed")
            extra[n] = (f"tinyc {n}T: compile_count {runner.compile_count} ({per}); "
                        f"symbolic_fallback: {runner.symbolic_fallback!r}")
            if runner.warmed is not None and runner.compile_count > 1:
                during = runner.compile_count - runner.warmed
                extra[n] += (f"\n  ({runner.warmed} compiles in the warm-up, "
                             f"{during} during the measured rounds" +
                             ("; the measured steps reused the warm-up's shapes, so their "
                              "times exclude compiles)" if during == 0 else
                              "; the steps that compiled include it)"))
        sys.stdout.flush()
    print_table(rows, thread_counts, extra)
    print_agreement(tokens, thread_counts)


def model_path(args) -> str:
    if args.arch == "llama":
        from tinyc.testing.llama_export import llama_with_kv_cache

        # init_std 0.1 as tests/llm/test_llama_export_decode.py: tokens that vary
        return llama_with_kv_cache(layers=args.layers, hidden=args.hidden, heads=args.heads,
                                   kv_heads=args.kv_heads, intermediate=args.intermediate,
                                   vocab=args.vocab, init_std=0.1, exporter=args.exporter,
                                   attention=args.attention)
    return gpt2_with_kv_cache(layers=args.layers, hidden=args.hidden, heads=args.heads,
                              vocab=args.vocab, seed=0, exporter=args.exporter)


def print_table(rows, thread_counts, extra) -> None:
    print(f"\n{'engine':<12}{'threads':>8}{'prefill ms':>12}{'median ms':>11}{'p90 ms':>9}"
          f"{'max ms':>9}{'tokens/s':>10}")
    for n in thread_counts:
        for eng in ("onnxruntime", "tinyc"):
            r = rows.get((eng, n))
            if r is None:
                continue
            if isinstance(r, str):
                print(f"{eng:<12}{n:>8}  {r[:100]}")
                continue
            s = r.summary()
            print(f"{eng:<12}{n:>8}{s['prefill_ms']:12.3f}{s['median_ms']:11.3f}"
                  f"{s['p90_ms']:9.3f}{s['max_ms']:9.3f}{s['tokens_per_s']:10.1f}")
    for n in thread_counts:
        if n in extra:
            print(extra[n])
    print("\nRatios tinyc / onnxruntime (below 1.0: tinyc is faster):")
    for n in thread_counts:
        t, o = rows.get(("tinyc", n)), rows.get(("onnxruntime", n))
        if not isinstance(t, DecodeResult) or not isinstance(o, DecodeResult):
            print(f"  {n}T: unavailable")
            continue
        ts, os_ = t.summary(), o.summary()
        print(f"  {n}T: decode median {ts['median_ms'] / os_['median_ms']:6.2f}x   "
              f"prefill {ts['prefill_ms'] / os_['prefill_ms']:6.2f}x   "
              f"slowest step / median: tinyc {ts['max_ms'] / ts['median_ms']:.2f}, "
              f"onnxruntime {os_['max_ms'] / os_['median_ms']:.2f}")


def print_agreement(tokens, thread_counts) -> None:
    ref = tokens.get(("onnxruntime", 1))
    for key, toks in tokens.items():
        if key == ("onnxruntime", 1) or ref is None:
            continue
        same = toks == ref
        diff = [i for i, (a, b) in enumerate(zip(toks, ref, strict=False)) if a != b]
        where = "" if same else f" (first difference at step {diff[0] if diff else len(toks)})"
        print(f"tokens {key[0]} {key[1]}T vs onnxruntime 1T: {'identical' if same else 'differ'}"
              f"{where}")
    if ref is not None:
        print(f"onnxruntime 1T tokens: {ref[:16]}{' ...' if len(ref) > 16 else ''}")


def _first_line(e: Exception) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=128, help="tokens decoded after the prompt")
    p.add_argument("--prompt", type=int, default=8, help="prompt length")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=1000)
    p.add_argument("--big", action="store_true", help="GPT-2 small's shape: 12 layers, "
                   "hidden 768, 12 heads, vocab 50257")
    p.add_argument("--exporter", default="dynamo", choices=("dynamo", "torchscript"))
    p.add_argument("--arch", default="gpt2", choices=("gpt2", "llama"))
    p.add_argument("--kv-heads", type=int, default=2, help="llama: key/value heads")
    p.add_argument("--intermediate", type=int, default=None, help="llama: MLP size "
                   "(default 2 * hidden)")
    p.add_argument("--attention", default="eager", choices=("eager", "sdpa"),
                   help="llama: transformers' attention implementation")
    p.add_argument("--start-past", type=int, default=0,
                   help="start both engines from this many masked zero rows of past instead "
                   "of an empty past")
    p.add_argument("--rounds", type=int, default=1, help="measured decodes per configuration")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="'all threads'")
    p.add_argument("--no-tinyc", action="store_true", help="onnxruntime only")
    p.add_argument("--max-compiles", type=int, default=6,
                   help="stop tinyc's decode after this many compiles (per-shape fallback)")
    p.add_argument("--diagnose", action="store_true",
                   help="where tinyc's symbolic pipeline stops on this model, then exit")
    p.add_argument("--past", type=int, default=16, help="past length for --diagnose")
    args = p.parse_args()
    if args.big:
        args.layers, args.hidden, args.heads, args.vocab = 12, 768, 12, 50257
    args.intermediate = args.intermediate or 2 * args.hidden
    if args.diagnose:
        from llm_diagnose import diagnose  # bench/: the script's own folder

        diagnose(model_path(args), args.past, args.prompt)
        return
    run_bench(args)


if __name__ == "__main__":
    main()
