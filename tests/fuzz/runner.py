"""Runs fuzz cases (cases.py) and prints one JSON line per case.

Usage: python runner.py < cases.json   ([[category, seed], ...] on stdin)

tinyc is imported and the base artifacts are compiled once; then each case
runs in a child forked from this process (cheap: nothing is imported again),
so a crash is a signal seen by waitpid and a hang is killed after TIMEOUT_S.
Outcomes: "ok", the name of the TinycError subclass that refused the case, or
a failure: "other:<type>", "crash:<signal>", "hang", "wrong".
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import tempfile
import time

import cases

TIMEOUT_S = 60.0


def make_env(folder: str) -> dict:
    import tinyc

    env = {"model_bytes": {k: f().SerializeToString() for k, f in cases.BASE_MODELS.items()}}
    symbolic = cases.BASE_MODELS["mlp"]()
    for vi in (*symbolic.graph.input, *symbolic.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    env["artifacts"] = {
        "mlp": tinyc.compile(env["model_bytes"]["mlp"]).save(os.path.join(folder, "mlp")),
        "gather": tinyc.compile(env["model_bytes"]["gather"]).save(os.path.join(folder, "g")),
        "symbolic": tinyc.compile(symbolic.SerializeToString()).save(os.path.join(folder, "s")),
    }
    env["spec_text"] = "name: board\nextends: x86-avx2\nvector_bits: 256\ncpu: haswell\n"
    return env


def run_case(category: str, seed: int, env: dict) -> dict:
    """Fork, run the case in the child, and classify how it ended."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(r)
        os._exit(_child(category, seed, env, w))
    os.close(w)
    start, chunks, status = time.monotonic(), [], None
    while True:
        left = TIMEOUT_S - (time.monotonic() - start)
        ready, _, _ = select.select([r], [], [], max(left, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return {"outcome": "hang", "detail": f"killed after {TIMEOUT_S:.0f} s"}
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"outcome": f"crash:{signal.Signals(os.WTERMSIG(status)).name}", "detail": ""}
    try:
        return json.loads(b"".join(chunks).decode())
    except ValueError:
        return {"outcome": f"crash:exit{os.WEXITSTATUS(status)}", "detail": ""}


def _child(category: str, seed: int, env: dict, w: int) -> int:
    import tinyc

    with tempfile.TemporaryDirectory(prefix="tinyc-fuzz-") as tmp:
        try:
            outcome, detail = cases.build(category, seed, env)(tmp), ""
        except tinyc.TinycError as e:
            outcome, detail = type(e).__name__, str(e)
        except cases.WrongAnswer as e:
            outcome, detail = "wrong", str(e)
        except BaseException as e:  # noqa: BLE001 - what the corpus is looking for
            import traceback

            outcome = f"other:{type(e).__name__}"
            detail = "".join(traceback.format_exception(e)[-6:])
    os.write(w, json.dumps({"outcome": outcome, "detail": detail[:2000]}).encode())
    os.close(w)
    return 0


def main() -> None:
    todo = json.load(sys.stdin)
    os.environ["TINYC_CACHE_DIR"] = "off"
    with tempfile.TemporaryDirectory(prefix="tinyc-fuzz-env-") as folder:
        env = make_env(folder)
        for category, seed in todo:
            result = run_case(category, seed, env)
            print(json.dumps({"category": category, "seed": seed, **result}), flush=True)


if __name__ == "__main__":
    main()
