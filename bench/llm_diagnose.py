"""`python bench/llm_decode.py --diagnose`: where tinyc's symbolic pipeline
stops on an exported LLM — op counts, dim_params, values whose dims ONNX
inference could not relate to the inputs and the shape chains producing them,
the error of a symbolic compile, and a per-shape compile checked against
onnxruntime on a decode step. For developers; numbers for notes, not a test."""

from __future__ import annotations

import collections
import os
import sys
import time
import traceback

import numpy as np
from llm_decode import _first_line, ort_session

import tinyc

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


