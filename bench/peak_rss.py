"""Peak memory of tinyc and onnxruntime on the onnxruntime-genai builder's Llama
(int4, 8 layers, hidden 1024: the model bench/genai_decode.py uses), each
measured in a child process of its own (issue 12: "Report peak RSS").

    python bench/peak_rss.py [--precision int4|fp32] [--layers 8 --hidden 1024]
                             [--tokens 64] [--prompt 32] [--cache DIR]

Rows:
  tinyc compile   a cold compile cache (a fresh folder, or --cache): the session
                  compiles (every specialization the decode needs) and decodes
  tinyc load      the same with the artifacts from the row above (cache hits):
                  load + decode only
  onnxruntime     InferenceSession load + the same decode
  python+imports  the floor: a child that imports tinyc, onnx and onnxruntime

Per row: peak RSS (VmHWM: it counts file pages mapped and touched as well as
anonymous memory; getrusage's ru_maxrss is no use here, as Linux carries it
over exec from the forked parent, whose imports then set the floor), and at the
end of the child RssAnon
(private memory) and RssFile (page-cache pages, shared between processes that
map the same file). Decodes are greedy, one thread, `--tokens` tokens from a
`--prompt`-token prompt; the rows' tokens are compared. Not a timing bench: the
figures do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def _status() -> dict[str, int]:
    """RssAnon / RssFile / VmHWM of this process, in KiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def _child(kind: str, folder: str, tokens: int, prompt_len: int) -> dict:
    import onnxruntime as ort

    import tinyc
    from tinyc.compiler import CompileOptions
    from tinyc.testing.genai_models import genai_greedy_decode

    prompt = [int(t) for t in np.random.default_rng(0).integers(3, 3900, prompt_len)]
    result: dict = {}
    if kind == "imports":
        pass
    elif kind == "ort":
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(f"{folder}/model.onnx", so,
                                    providers=["CPUExecutionProvider"])
        result["tokens"] = genai_greedy_decode(sess, folder, prompt, tokens,
                                               keep_logits=False).tokens
    else:
        sess = tinyc.InferenceSession(f"{folder}/model.onnx", target="x86",
                                      options=CompileOptions(threads=1))
        result["tokens"] = genai_greedy_decode(sess, folder, prompt, tokens,
                                               keep_logits=False).tokens
        result["compiles"] = sess.compile_count
    result.update(_status())
    return result


def _run_child(kind: str, folder: str, args, cache: str) -> dict:
    env = dict(os.environ, TINYC_CACHE_DIR=cache)
    cmd = [sys.executable, __file__, "--child", kind, "--folder", folder,
           "--tokens", str(args.tokens), "--prompt", str(args.prompt)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _weights_on_disk(folder: str) -> tuple[int, int]:
    """Bytes of the MatMulNBits weights (B, scales, zero points) and of every
    initializer, read from the model's tensor headers (no data is loaded)."""
    import onnx

    proto = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    quantized = {i for n in proto.graph.node if n.op_type == "MatMulNBits"
                 for i in n.input[1:4] if i}
    sizes = {t.name: _tensor_bytes(t) for t in proto.graph.initializer}
    return sum(s for n, s in sizes.items() if n in quantized), sum(sizes.values())


def _tensor_bytes(t) -> int:
    for e in t.external_data:
        if e.key == "length":
            return int(e.value)
    return len(t.raw_data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", default="int4", choices=["int4", "fp32"])
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--cache", help="compile cache folder (default: a new temporary one, "
                                   "so the first tinyc row compiles)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.folder, args.tokens, args.prompt)))
        return
    from tinyc.testing.genai_models import llama_genai

    heads = max(args.hidden // 64, 1)
    folder = llama_genai(args.precision, layers=args.layers, hidden=args.hidden, heads=heads,
                         kv_heads=max(heads // 4, 1), intermediate=args.hidden * 11 // 4,
                         vocab=4000)
    quantized, total = _weights_on_disk(folder)
    print(f"{folder}\n{args.precision}, {args.layers} layers, hidden {args.hidden}: "
          f"int4 weights (MatMulNBits B + scales + zero points) {quantized / 2**20:.1f} MiB, "
          f"all initializers {total / 2**20:.1f} MiB; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="tinyc-peak-rss-") as tmp:
        cache = args.cache or tmp
        rows = [("python+imports", _run_child("imports", folder, args, cache)),
                ("tinyc compile", _run_child("tinyc", folder, args, cache)),
                ("tinyc load", _run_child("tinyc", folder, args, cache)),
                ("onnxruntime", _run_child("ort", folder, args, cache))]
    print(f"{'':16} {'peak RSS':>10} {'RssAnon':>10} {'RssFile':>10}  (MiB, at the end)")
    for name, r in rows:
        note = f"  compiles {r['compiles']}" if "compiles" in r else ""
        print(f"{name:16} {r['VmHWM'] / 1024:10.1f} {r['RssAnon'] / 1024:10.1f} "
              f"{r['RssFile'] / 1024:10.1f}{note}")
    tokens = [r["tokens"] for _, r in rows if "tokens" in r]
    print(f"same tokens in every decode: {all(t == tokens[0] for t in tokens)}")


if __name__ == "__main__":
    main()
