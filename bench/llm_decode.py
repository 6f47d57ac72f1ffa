"""LLM decode: greedy decoding of a GPT-2 from `transformers` with its KV cache,
tinyc against onnxruntime, at 1 thread and at all threads.

    python bench/llm_decode.py [--tokens 128] [--prompt 8] [--layers 4 --hidden 256 --heads 4]
                               [--vocab 1000] [--exporter dynamo|torchscript] [--big]
                               [--threads N] [--no-tinyc] [--max-compiles 6] [--diagnose]

The model (tinyc.testing.llm_models.gpt2_with_kv_cache: seeded random weights,
KV cache as past_* inputs and present_* outputs, symbolic batch / seq / past)
decodes N tokens after a prompt of seeded random ids: step 0 is the prefill
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
import collections
import os
import statistics
import sys
import time
import traceback

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

    path = gpt2_with_kv_cache(layers=args.layers, hidden=args.hidden, heads=args.heads,
                              vocab=args.vocab, seed=0, exporter=args.exporter)
    rng = np.random.default_rng(0)
    prompt = [int(t) for t in rng.integers(0, args.vocab, args.prompt)]
    past = empty_past(path)
    print(f"tinyc {tinyc.__version__} vs onnxruntime {ort.__version__}; {os.cpu_count()} cores, "
          f"all-T = {args.threads} threads")
    print(f"GPT-2 {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab "
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


# --- diagnosis ------------------------------------------------------------------------

SHAPE_OPS = {"Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Range",
             "Expand", "Slice", "Where", "Cast", "Add", "Sub", "Mul", "Div", "Equal", "Less",
             "LessOrEqual", "Greater", "And", "Or", "Not", "ConstantOfShape", "Max", "Min",
             "Constant", "Tile", "Neg", "Mod", "Floor", "Ceil", "Identity", "ReduceProd",
             "GatherND", "GatherElements", "Flatten"}


class _Graph:
    """Inferred shapes and producers, as tinyc's importer sees them (ONNX inference,
    strict, with data propagation)."""

    def __init__(self, path: str):
        import onnx
        from onnx import shape_inference

        self.model = onnx.load(path)
        inferred = shape_inference.infer_shapes(self.model, strict_mode=True, data_prop=True)
        self.g = inferred.graph
        self.inits = {t.name: t for t in self.g.initializer}
        self.symbols: list[str] = []
        for vi in self.g.input:
            for d in vi.type.tensor_type.shape.dim:
                if d.dim_param and d.dim_param not in self.symbols:
                    self.symbols.append(d.dim_param)
        self.shape: dict[str, list] = {}
        self.dtype: dict[str, int] = {}
        for vi in [*self.g.input, *self.g.value_info, *self.g.output]:
            tt = vi.type.tensor_type
            self.dtype[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                self.shape[vi.name] = [d.dim_param if d.dim_param else
                                       (d.dim_value if d.HasField("dim_value") else "?")
                                       for d in tt.shape.dim]
        for t in self.g.initializer:
            self.shape[t.name] = list(t.dims)
            self.dtype[t.name] = t.data_type
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.inputs = {i.name for i in self.g.input}

    def unrelated(self, v: str) -> list[str] | None:
        """The dims of `v` that are not numbers nor input symbols (None: no rank)."""
        s = self.shape.get(v)
        if s is None:
            return None
        return [d for d in s if isinstance(d, str) and d not in self.symbols]

    def introducers(self):
        """Nodes whose outputs have unrelated dims while none of their inputs do:
        where the relation to the inputs is lost (downstream values inherit it)."""
        out = []
        for n in self.g.node:
            if n.op_type == "Constant":
                continue
            bad_out = [o for o in n.output if o and self.unrelated(o) != []]
            bad_in = [i for i in n.input if i and i not in self.inits and self.unrelated(i) != []]
            if bad_out and not bad_in:
                out.append(n)
        return out

    def describe(self, v: str) -> str:
        if v in self.inits:
            from onnx import numpy_helper

            a = numpy_helper.to_array(self.inits[v])
            return f"{v} = const {a.tolist() if a.size <= 8 else f'[{a.shape}]'}"
        n = self.producer.get(v)
        if n is not None and n.op_type == "Constant":
            from onnx import numpy_helper

            a = numpy_helper.to_array(n.attribute[0].t) if n.attribute[0].type == 4 else None
            if a is not None:
                return f"{v} = Constant {a.tolist() if a.size <= 8 else f'[{a.shape}]'}"
        return f"{v} {self.shape.get(v, '<no rank>')}"

    def chain(self, v: str, depth: int = 0, max_depth: int = 10, seen=None) -> list[str]:
        """Lines of the tree of shape ops that computes `v`, up to inputs, Shape
        nodes and constants (data-path tensors are named, not followed)."""
        seen = set() if seen is None else seen
        pad = "    " * depth
        n = self.producer.get(v)
        if v in self.inputs or n is None or n.op_type == "Constant":
            return [pad + self.describe(v)]
        line = f"{pad}{self.describe(v)}  <- {n.op_type} '{n.name}'"
        if n.op_type == "Shape":
            attrs = {a.name: a.i for a in n.attribute}
            return [f"{line}({n.input[0]} {self.shape.get(n.input[0])}"
                    f"{', ' + str(attrs) if attrs else ''})"]
        if v in seen:
            return [line + "  (above)"]
        seen.add(v)
        if depth >= max_depth:
            return [line + "  ..."]
        lines = [line]
        for i in n.input:
            if not i:
                continue
            p = self.producer.get(i)
            data_path = (self.dtype.get(i) == 1 and len(self.shape.get(i, [])) > 1
                         and (p is None or p.op_type not in SHAPE_OPS or
                              p.op_type in ("Concat", "Reshape", "Expand", "Where")))
            if data_path or (p is not None and p.op_type not in SHAPE_OPS):
                lines.append(f"{pad}    {self.describe(i)}  (data, from "
                             f"{p.op_type if p is not None else 'input'})")
            else:
                lines += self.chain(i, depth + 1, max_depth, seen)
        return lines


def diagnose(path: str, past_len: int, prompt: int) -> None:

    from tinyc.compiler import CompileOptions, compile_model

    g = _Graph(path)
    print(f"model: {path}")
    print("\ninputs / outputs (dims as declared):")
    for vi in [*g.model.graph.input, *g.model.graph.output]:
        dims = [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        print(f"  {vi.name:<28}{dims}")
    print(f"input symbols (dim_params): {g.symbols}")
    counts = collections.Counter(n.op_type for n in g.model.graph.node)
    print(f"\nop types ({sum(counts.values())} nodes, opset "
          f"{[o.version for o in g.model.opset_import if o.domain in ('', 'ai.onnx')]}):")
    print("  " + ", ".join(f"{op} {k}" for op, k in sorted(counts.items())))
    # dims ONNX inference leaves unrelated to the inputs
    bad = {v: g.unrelated(v) for v in g.shape if v not in g.inits and g.unrelated(v) != []}
    names = collections.Counter(d for ds in bad.values() if ds for d in ds)
    print(f"\nvalues with dims not related to the input symbols by ONNX inference: {len(bad)}")
    print(f"  dim names: {dict(names.most_common(20))}")
    unranked = [v for v, ds in bad.items() if ds is None]
    if unranked:
        print(f"  without a rank: {len(unranked)}, e.g. {unranked[:5]}")
    intro = g.introducers()
    print(f"  where the relation is lost (nodes with such outputs and none in their inputs):"
          f" {len(intro)}")
    by_op = collections.Counter(n.op_type for n in intro)
    print(f"  by op: {dict(by_op)}")
    for n in intro:
        outs = ", ".join(f"{o} {g.shape.get(o)}" for o in n.output)
        print(f"    {n.op_type:<9}'{n.name}' -> {outs}")
    print("\nrepresentative chains (one per op type and output dim name):")
    shown = set()
    for n in intro:
        key = (n.op_type, tuple(d for o in n.output for d in (g.unrelated(o) or ["<no rank>"])))
        if key in shown:
            continue
        shown.add(key)
        print(f"  --- {n.op_type} '{n.name}':")
        for line in g.chain(n.output[0], 1):
            print(line)
    sys.stdout.flush()

    hints = {"batch": 1, "seq": 1, "past": past_len, "total": past_len + 1}
    hints = {s: hints.get(s, 1) for s in g.symbols}
    print(f"\n=== tinyc, symbolic: compile_model(path, 'x86', CompileOptions(shape_hints={hints}))")
    t0 = time.perf_counter()
    state = _watch_symbolic_pass()
    try:
        art = compile_model(path, "x86", CompileOptions(shape_hints=hints))
        print(f"compiled in {time.perf_counter() - t0:.1f} s; symbolic meta: "
              f"{art.meta.get('symbolic', {}).get('symbols')}")
    except Exception as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = [f"{os.path.relpath(f.filename, os.path.dirname(tinyc.__file__))}:{f.lineno} "
                 f"{f.name}" for f in tb if "tinyc" in f.filename or "/core/" in f.filename]
        print(f"stops after {time.perf_counter() - t0:.1f} s: {type(e).__name__}: {e}")
        print(f"  at: {' -> '.join(where[-4:])}")
        value = _quoted_value(str(e), g)
        _print_node_state(state, g, value)
        if value:
            print(f"  chain of '{value}':")
            for line in g.chain(value, 2):
                print(line)
    sys.stdout.flush()

    print(f"\n=== tinyc, per shape: decode step (seq 1, past {past_len}) and prefill "
          f"(seq {prompt}, past 0) against onnxruntime")
    o = ort_session(path, 1)
    rng = np.random.default_rng(0)
    for seq, plen in ((1, past_len), (prompt, 0)):
        feeds = _feeds(g, rng, seq, plen)
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        want = o.run(None, feeds)
        t0 = time.perf_counter()
        try:
            art = compile_model(path, "x86", input_shapes=shapes)
            compile_s = time.perf_counter() - t0
            import tempfile

            with tempfile.TemporaryDirectory() as d:
                native = art.load(os.path.join(d, "a"))
                got = native.run(None, feeds)
            errs = [float(np.abs(a - b).max()) if a.size else 0.0
                    for a, b in zip(got, want, strict=True)]
            names = [vi.name for vi in g.model.graph.output]
            worst = int(np.argmax(errs))
            print(f"  seq {seq}, past {plen}: compiled in {compile_s:.1f} s; max |tinyc - ort| "
                  f"{max(errs):.2e} (at {names[worst]}); logits {errs[0]:.2e}; "
                  f"{'MATCH' if max(errs) < 1e-4 else 'MISMATCH'} (tolerance 1e-4)")
        except Exception as e:
            print(f"  seq {seq}, past {plen}: fails after {time.perf_counter() - t0:.1f} s: "
                  f"{type(e).__name__}: {_first_line(e)}")
        sys.stdout.flush()


def _watch_symbolic_pass() -> dict:
    """Keep the state of tinyc's symbolic shape inference (passes/symbolic_shapes.py)
    and the node it last worked on, to show what it knew where it stopped.
    Best effort: the pass is being written; without it, nothing is kept."""
    seen: dict = {}
    try:
        from tinyc.passes import symbolic_shapes as ss
    except ImportError:
        return seen
    inner = getattr(ss, "_infer_node", None)
    if inner is None or getattr(inner, "_watched", False):
        return seen

    def watched(st, node):
        seen["state"], seen["node"] = st, node
        return inner(st, node)

    watched._watched = True
    ss._infer_node = watched
    seen["rules"] = set(getattr(ss, "_RULES", {}))
    return seen


def _print_node_state(seen: dict, g: _Graph, value: str | None) -> None:
    st, node = seen.get("state"), seen.get("node")
    if st is None or node is None:
        return
    rule = node.op in seen.get("rules", ())
    print(f"  last node: {node.op} '{node.name}' (a rule for {node.op}: "
          f"{'yes' if rule else 'NO'}); what the pass knew of its inputs:")
    for i in node.inputs:
        if not i:
            continue
        shape = st.shapes.get(i)
        vals = getattr(st, "values", {}).get(i)
        p = g.producer.get(i)
        print(f"    {i} (from {p.op_type if p is not None else 'input/const'}): shape "
              f"{[str(d) for d in shape] if shape is not None else 'NOT DERIVED'}, contents "
              f"{[str(v) for v in vals] if vals is not None else 'unknown'}")


def _feeds(g: _Graph, rng, seq: int, past_len: int) -> dict[str, np.ndarray]:
    feeds = {"input_ids": rng.integers(0, 100, (1, seq)).astype(np.int64),
             "attention_mask": np.ones((1, past_len + seq), np.int64)}
    for vi in g.model.graph.input:
        if vi.name.startswith("past_key_values."):
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            feeds[vi.name] = rng.standard_normal((1, dims[1], past_len, dims[3])).astype(np.float32)
    return feeds


def _quoted_value(msg: str, g: _Graph) -> str | None:
    import re

    for q in re.findall(r"'([^']+)'", msg):
        if q in g.producer:
            return q
    return None


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
    if args.diagnose:
        path = gpt2_with_kv_cache(layers=args.layers, hidden=args.hidden, heads=args.heads,
                                  vocab=args.vocab, seed=0, exporter=args.exporter)
        diagnose(path, args.past, args.prompt)
        return
    run_bench(args)


if __name__ == "__main__":
    main()
