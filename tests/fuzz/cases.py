"""The fuzz corpus (issue 15, item 9): generators of hostile inputs by category.

A case is a small descriptor (category, seed); `build` turns it, always the
same way, into a function run in a forked child (runner.py). The function
returns "ok" or raises; its outcome is "ok", the TinycError subclass that
refused it, or a failure: another exception, a crash, a hang, or a wrong
answer (an "ok" whose outputs differ from the reference).

Categories: byte flips of small models, helper-built bad graphs (the contract
cases and random attribute / shape mutations), bad feeds, bad target specs
(YAML) and tampered artifacts (every field of model.json, cut or garbled files).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable

import numpy as np
from onnx import TensorProto, helper, numpy_helper

CATEGORIES = ("byte_flip", "bad_graph", "bad_feed", "bad_spec", "tampered_artifact")


class WrongAnswer(Exception):
    """An accepted case whose outputs differ from the reference."""


# ---- base models: small, with a numpy reference


def _mlp():
    """y = relu(x); z = softmax(x @ w) @ w (an arena, two outputs)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 8]) for n in ("y", "z")]
    w = numpy_helper.from_array(_w(), "w")
    nodes = [helper.make_node("Relu", ["x"], ["y"]),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Softmax", ["h"], ["s"]),
             helper.make_node("MatMul", ["s", "w"], ["z"])]
    g = helper.make_graph(nodes, "mlp", [x], outs, [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _w() -> np.ndarray:
    return (np.arange(64, dtype=np.float32).reshape(8, 8) % 7 - 3) / 4


def mlp_reference(x: np.ndarray) -> list[np.ndarray]:
    h = x.astype(np.float64) @ _w()
    e = np.exp(h - h.max(axis=-1, keepdims=True))
    return [np.maximum(x, 0), ((e / e.sum(-1, keepdims=True)) @ _w()).astype(np.float32)]


def _gather():
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, [5, 3])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])
    g = helper.make_graph([helper.make_node("Gather", ["data", "idx"], ["y"], axis=0)],
                          "gather", [data, idx], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _conv():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32) / 27, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    g = helper.make_graph(nodes, "conv", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


BASE_MODELS = {"mlp": _mlp, "gather": _gather, "conv": _conv}


def feeds_for(model) -> dict[str, np.ndarray]:
    """Deterministic feeds matching a loaded model's inputs (symbolic dims: 2)."""
    out = {}
    for i in model.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in i.shape]
        n = int(np.prod(shape))
        out[i.name] = (np.arange(n) % 3).astype(i.dtype).reshape(shape)
    return out


def compile_and_run(data: bytes, tmp: str, target: str = "x86") -> str:
    import tinyc

    art = tinyc.compile(data, target=target)
    m = tinyc.runtime.load(art.save(os.path.join(tmp, "art")))
    m.run(None, feeds_for(m))
    return "ok"


# ---- byte flips


def byte_flip(rng: random.Random, env: dict) -> Callable[[str], str]:
    name = rng.choice(sorted(BASE_MODELS))
    data = bytearray(env["model_bytes"][name])
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    return lambda tmp: compile_and_run(bytes(data), tmp)


# ---- helper-built bad graphs

_POOL = [-(1 << 40), -1, 0, 1, 2, 3, 7, 1 << 31, 1 << 40]
_OPS = [  # op, input shapes, attributes (each may be mutated), opset
    ("Conv", [[1, 4, 6, 6], [4, 4, 3, 3]], {"group": 1, "strides": [1, 1],
                                            "dilations": [1, 1], "pads": [1, 1, 1, 1]}, 13),
    ("MaxPool", [[1, 2, 6, 6]], {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0]},
     13),
    ("AveragePool", [[1, 2, 6, 6]], {"kernel_shape": [3, 3], "strides": [1, 1]}, 13),
    ("LRN", [[1, 4, 5, 5]], {"size": 3}, 13),
    ("Softmax", [[2, 5]], {"axis": 1}, 13),
    ("Transpose", [[2, 3, 4]], {"perm": [2, 0, 1]}, 13),
    ("Concat", [[2, 3], [2, 4]], {"axis": 1}, 13),
    ("Flatten", [[2, 3, 4]], {"axis": 1}, 13),
    ("Gemm", [[2, 3], [3, 4]], {"transA": 0, "transB": 0, "alpha": 1.0}, 13),
    ("MatMul", [[2, 3], [3, 4]], {}, 13),
    ("ReduceSum", [[2, 3, 4]], {"keepdims": 1}, 11),
    ("Split", [[6, 2]], {"axis": 0}, 11),
    ("DepthToSpace", [[1, 8, 2, 2]], {"blocksize": 2}, 13),
    ("SpaceToDepth", [[1, 2, 4, 4]], {"blocksize": 2}, 13),
    ("InstanceNormalization", [[1, 4, 3, 3], [4], [4]], {"epsilon": 1e-5}, 13),
    ("LSTM", [[2, 1, 5], [1, 16, 5], [1, 16, 4]], {"hidden_size": 4}, 14),
    ("GRU", [[2, 1, 5], [1, 12, 5], [1, 12, 4]], {"hidden_size": 4}, 14),
    ("Einsum", [[2, 3], [3, 4]], {"equation": "ij,jk->ik"}, 13),
    ("CumSum", [[4, 3], []], {}, 14),
    ("Tile", [[2, 3]], {}, 13),
]


def bad_graph(rng: random.Random, env: dict) -> Callable[[str], str]:
    from tinyc.testing.bad_models import CONTRACT_CASES

    contract = sorted(CONTRACT_CASES)
    pick = rng.randrange(len(contract) + 3 * len(_OPS))
    if pick < len(contract):
        model = CONTRACT_CASES[contract[pick]]()[0]
        return lambda tmp: compile_and_run(model.SerializeToString(), tmp)
    op, shapes, attrs, opset = rng.choice(_OPS)
    shapes, attrs = [list(s) for s in shapes], dict(attrs)
    for _ in range(rng.randint(1, 2)):
        if attrs and rng.random() < 0.6:
            k = rng.choice(sorted(attrs))
            v = rng.choice(_POOL)
            old = attrs[k]
            attrs[k] = ([v] * len(old) if isinstance(old, list) else float(v)
                        if isinstance(old, float) else rng.choice(["ij,ik->jk", "ii->i", "ij->",
                                                                    "ab,bc->ac", ",->", "i,j"])
                        if isinstance(old, str) else v)
        else:
            s = rng.choice([s for s in shapes if s] or [[1]])
            s[rng.randrange(len(s))] = rng.choice([0, 1, 2, 5])
    model = _one_op(op, shapes, attrs, opset)
    return lambda tmp: _compile_run_compare(model, tmp)


def _one_op(op: str, shapes: list[list[int]], attrs: dict, opset: int):
    names = [f"i{k}" for k in range(len(shapes))]
    vis = [helper.make_tensor_value_info(n, TensorProto.INT64 if op == "CumSum" and k == 1 else
                                         TensorProto.FLOAT, s)
           for k, (n, s) in enumerate(zip(names, shapes, strict=True))]
    inits = []
    if op == "Tile":
        inits = [numpy_helper.from_array(np.array([2, 1], np.int64), "reps")]
        names = [*names, "reps"]
    node = helper.make_node(op, names, ["y"], name="fuzzed", **attrs)
    g = helper.make_graph([node], "fuzzed", vis, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _compile_run_compare(model, tmp: str) -> str:
    """Compile and run; an accepted model's output must match onnxruntime's
    when onnxruntime accepts it too."""
    import tinyc

    m = tinyc.compile(model, target="x86").load(os.path.join(tmp, "art"))
    feeds = feeds_for(m)
    got = m.run(None, feeds)
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        want = sess.run(None, feeds)
    except Exception:
        return "ok"  # onnxruntime refuses what tinyc accepts: no reference to compare
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape or not np.allclose(g, w, rtol=1e-4, atol=1e-4, equal_nan=True):
            raise WrongAnswer(f"output {g.shape} differs from onnxruntime's {w.shape}")
    return "ok"


# ---- bad feeds

_DTYPES = ["float64", "float16", "int32", "int64", "uint8", "bool", "int8", "object"]


def bad_feed(rng: random.Random, env: dict) -> Callable[[str], str]:
    name = rng.choice(["mlp", "mlp", "gather", "symbolic"])
    folder = env["artifacts"][name]
    kind = rng.choice(["dtype", "shape", "values", "names", "not_array", "view", "indices"])
    return lambda tmp: _run_feed(folder, name, kind, rng, tmp)


def _run_feed(folder: str, name: str, kind: str, rng: random.Random, tmp: str) -> str:
    import tinyc

    m = tinyc.runtime.load(folder)
    feeds = feeds_for(m)
    first = m.get_inputs()[0].name
    x = feeds[first]
    check = name == "mlp"
    if kind == "dtype":
        feeds[first] = x.astype(rng.choice(_DTYPES))
    elif kind == "shape":
        feeds[first] = np.ones([rng.choice([0, 1, 2, 3, 9]) for _ in range(rng.randint(0, 4))],
                               x.dtype)
        check = False
    elif kind == "values":
        v = rng.choice([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, 0.0, -0.0])
        if x.dtype.kind == "f":
            flat = x.reshape(-1).copy()
            flat[rng.randrange(flat.size)] = v
            feeds[first] = flat.reshape(x.shape)
    elif kind == "names":
        which = rng.choice(["rename", "drop", "extra"])
        if which == "rename":
            feeds = {first + rng.choice(["_", "\0", "é", ""]): x}
        elif which == "drop":
            feeds = {}
        else:
            feeds["extra"] = x
    elif kind == "not_array":
        feeds[first] = rng.choice([None, "text", x.tolist(), 1.5, {"a": 1},
                                   np.array([object()] * x.size, dtype=object)])
        check = False
    elif kind == "view":
        big = np.zeros((x.shape[0] * 2, *x.shape[1:]), x.dtype) if x.ndim else x
        big[::2] = x
        feeds[first] = big[::2]  # not contiguous: same values
    elif kind == "indices" and name == "gather":
        feeds["idx"] = np.array([rng.choice([-6, -5, -1, 0, 4, 5, 1 << 40, -(1 << 62)])
                                 for _ in range(4)], np.int64)
        out = m.run(None, feeds)[0]  # in range: must be data[idx]
        if not np.array_equal(out, feeds["data"][feeds["idx"]]):
            raise WrongAnswer("Gather returned other rows than data[idx]")
        return "ok"
    elif name == "symbolic":
        feeds[first] = np.ones((rng.choice([0, 1, 3, 17, 1000]), *x.shape[1:]), x.dtype)
    outs = m.run(None, feeds)
    if check and kind in ("values", "view", "indices"):
        for got, want in zip(outs, mlp_reference(feeds[first]), strict=True):
            if not np.allclose(got, want, rtol=1e-4, atol=1e-5, equal_nan=True) \
                    and np.isfinite(want).all():
                raise WrongAnswer("outputs differ from the numpy reference")
    return "ok"


# ---- bad specs

_SPEC_POOL = [None, -1, 0, 1, 1e300, "pentium99", "i386", "", [], {}, "x" * 5000, True,
              "+nonexistent", ["+avx2", "+nope"], {"a": {"b": [1, 2]}}, 1 << 70]
_YAML_BOMBS = [
    "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi",
                                                                      strict=True)),
    "a: &a [*a]\n", "a: " + "[" * 200 + "]" * 200 + "\n", "name: x\n" * 5,
    "\ufeffname: board\nextends: x86\n", "!!python/object:os.system {}\n",
]


def bad_spec(rng: random.Random, env: dict) -> Callable[[str], str]:
    base = env["spec_text"]
    r = rng.random()
    if r < 0.15:
        text = rng.choice(_YAML_BOMBS).encode()
    elif r < 0.3:
        data = bytearray(base.encode("utf-16" if rng.random() < 0.3 else "utf-8"))
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        text = bytes(data)
    else:
        import yaml

        doc = yaml.safe_load(base)
        key = rng.choice(sorted(doc))
        if rng.random() < 0.2 and key != "name":
            del doc[key]
        else:
            doc[key] = rng.choice(_SPEC_POOL)
        text = yaml.safe_dump(doc).encode()
    build = rng.random() < 0.3
    return lambda tmp: _use_spec(text, build, env, tmp)


def _use_spec(text: bytes, build: bool, env: dict, tmp: str) -> str:
    import tinyc
    from tinyc.target import resolve_device

    path = os.path.join(tmp, "board.yaml")
    with open(path, "wb") as f:
        f.write(text)
    resolve_device(path)
    if build:
        m = tinyc.compile(env["model_bytes"]["mlp"], target=path).load(os.path.join(tmp, "a"))
        m.run(None, feeds_for(m))
    return "ok"


# ---- tampered artifacts

_JSON_POOL = [None, -1, 0, 1, 1 << 63, -(1 << 63), 1.5, "", "abort", "x" * 300, [], {}, True,
              [1, 2], {"a": 1}, "../../etc/passwd", "float64", "object", "\udcff"]


def tampered_artifact(rng: random.Random, env: dict) -> Callable[[str], str]:
    name = rng.choice(["mlp", "mlp", "symbolic", "gather"])
    src = env["artifacts"][name]
    r = rng.random()
    if r < 0.7:
        return lambda tmp: _edit_field(src, name, rng, tmp)
    return lambda tmp: _damage_file(src, name, rng, tmp)


def _copy(src: str, tmp: str) -> str:
    d = os.path.join(tmp, "a")
    shutil.copytree(src, d)
    return d


def _edit_field(src: str, name: str, rng: random.Random, tmp: str) -> str:
    from tinyc.runtime.validate import SIDECAR, meta_digest_file

    d = _copy(src, tmp)
    with open(os.path.join(d, "model.json")) as f:
        meta = json.load(f)
    _mutate(meta, rng)
    data = json.dumps(meta).encode("utf-8", "surrogatepass")
    with open(os.path.join(d, "model.json"), "wb") as f:
        f.write(data)
    if rng.random() < 0.6:  # as if the editor knew to update the checksum too
        with open(os.path.join(d, SIDECAR), "wb") as f:
            f.write(meta_digest_file(data))
    return _load_run_compare(d, name)


def _paths(value, prefix=()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(meta: dict, rng: random.Random) -> None:
    path = rng.choice(_paths(meta)[1:])
    parent = meta
    for k in path[:-1]:
        parent = parent[k]
    key, old = path[-1], parent[path[-1]]
    op = rng.random()
    if op < 0.2:
        del parent[key]
    elif op < 0.4 and isinstance(old, int) and not isinstance(old, bool):
        parent[key] = old + rng.choice([-1, 1, -old, old * 1000])
    elif op < 0.5 and isinstance(old, list) and old:
        parent[key] = old[:-1] if rng.random() < 0.5 else old[::-1]
    else:
        parent[key] = rng.choice(_JSON_POOL)


def _damage_file(src: str, name: str, rng: random.Random, tmp: str) -> str:
    d = _copy(src, tmp)
    target = os.path.join(d, rng.choice(["model.so", "model.so", "weights.bin", "model.json",
                                         "model.json.sha256"]))
    with open(target, "rb") as f:
        data = bytearray(f.read())
    how = rng.choice(["truncate", "flip", "delete", "empty", "append"])
    if how == "delete":
        os.unlink(target)
    else:
        if how == "truncate":
            data = data[:rng.randrange(max(len(data), 1))]
        elif how == "flip" and data:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        elif how == "empty":
            data = bytearray()
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        with open(target, "wb") as f:
            f.write(data)
    return _load_run_compare(d, name)


def _load_run_compare(folder: str, name: str) -> str:
    import tinyc

    m = tinyc.runtime.load(folder)
    if name != "mlp":
        m.run(None, feeds_for(m))
        return "ok"
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    got = m.run(None, {"x": x})
    for g, w in zip(got, mlp_reference(x), strict=True):
        if g.shape != w.shape or not np.allclose(g, w, rtol=1e-4, atol=1e-5):
            raise WrongAnswer("a loaded artifact computed something else")
    return "ok"


GENERATORS = {"byte_flip": byte_flip, "bad_graph": bad_graph, "bad_feed": bad_feed,
              "bad_spec": bad_spec, "tampered_artifact": tampered_artifact}


def build(category: str, seed: int, env: dict) -> Callable[[str], str]:
    return GENERATORS[category](random.Random(f"{category}-{seed}"), env)


def corpus(per_category: int, start: int = 0) -> list[tuple[str, int]]:
    return [(c, start + i) for c in CATEGORIES for i in range(per_category)]
