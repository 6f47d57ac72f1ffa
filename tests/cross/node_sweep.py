"""Compile (or compile and run) the ONNX node-suite cases that pass on x86 for one
cross target, surviving LLVM aborts and hangs: a worker process takes the cases
in turn and logs each start and result; when it dies or stalls (90 s on one case)
the case is recorded as ABORT or HANG and a new worker goes on after it.

    python tests/cross/node_sweep.py cortex-m4 out.json [--run] [--expanded] [--filter RE]

Not a test (a full sweep takes 10-30 minutes per target): a tool to hunt for
kernels a target cannot build. Prints the cases that did not pass.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1] / "onnx_backend"
STALL_SECONDS = 90


def _cases() -> dict:
    sys.path.insert(0, str(SUITE))
    from node_cases import node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: c for c in node_cases()}


def _one(case, target: str, run: bool) -> str:
    import tinyc
    from tinyc.errors import TinycError

    try:
        if not run:
            tinyc.compile(case.model, target)
            return "ok"
        from node_cases import _as_array
        from onnx.backend.test.runner import Runner

        sess = tinyc.InferenceSession(case.model, target=target)
        names = [i.name for i in sess.get_inputs()]
        for inputs, expected in case.data_sets:
            outs = sess.run(None, dict(zip(names, [_as_array(i) for i in inputs], strict=True)))
            Runner.assert_similar_outputs([_as_array(e) for e in expected], list(outs),
                                          rtol=case.rtol, atol=case.atol)
        return "ok"
    except TinycError as e:
        return f"error {type(e).__name__}: {str(e)[:300]}"
    except AssertionError as e:
        return f"MISMATCH {str(e)[:300]}"
    except Exception as e:  # a crash of ours: reported like the rest
        return f"EXCEPTION {type(e).__name__}: {str(e)[:300]}"


def worker(target: str, todo: Path, log: Path, run: bool) -> None:
    cases = _cases()
    with open(log, "a") as f:
        for name in json.loads(todo.read_text()):
            f.write(json.dumps({"start": name}) + "\n")
            f.flush()
            f.write(json.dumps({"done": name, "result": _one(cases[name], target, run)}) + "\n")
            f.flush()


def _watch(cmd: list[str], log: Path, err: Path) -> int:
    """Run a worker; kill it when one case takes longer than STALL_SECONDS."""
    with open(err, "w") as errf:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
    current, since = None, time.time()
    while p.poll() is None:
        time.sleep(2)
        lines = log.read_text().splitlines()
        try:
            last = json.loads(lines[-1]) if lines else {}
        except ValueError:  # a line being written
            continue
        if last.get("start") != current:
            current, since = last.get("start"), time.time()
        elif current and time.time() - since > STALL_SECONDS:
            p.kill()
    return p.wait()


def sweep(target: str, names: list[str], out: Path, run: bool) -> dict[str, str]:
    log, todo, err = (out.with_suffix(s) for s in (".log", ".todo", ".err"))
    log.write_text("")
    results: dict[str, str] = {}
    while len(results) < len(names):
        todo.write_text(json.dumps([n for n in names if n not in results]))
        cmd = [sys.executable, __file__, target, str(out), "--worker"] + (["--run"] if run else [])
        code = _watch(cmd, log, err)
        started = None
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if "start" in entry:
                started = entry["start"]
            else:
                results[entry["done"]], started = entry["result"], None
        if started is None:
            if code != 0:
                sys.exit(f"worker died between cases:\n{err.read_text()[-2000:]}")
            continue
        last_err = (err.read_text().strip().splitlines() or [""])[-1][:300]
        results[started] = "HANG" if code == -9 else f"ABORT (exit {code}): {last_err}"
        with open(log, "a") as f:
            f.write(json.dumps({"done": started, "result": results[started]}) + "\n")
    out.write_text(json.dumps(results, indent=0))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target")
    ap.add_argument("out", type=Path)
    ap.add_argument("--run", action="store_true", help="also run and compare with the suite")
    ap.add_argument("--expanded", action="store_true", help="include the _expanded cases")
    ap.add_argument("--filter", help="only cases whose name matches this regular expression")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        out = a.out
        worker(a.target, out.with_suffix(".todo"), out.with_suffix(".log"), a.run)
        return
    sys.path.insert(0, str(SUITE))
    from expected_failures import failure_reason

    names = [n for n in _cases() if failure_reason(n) is None
             and (a.expanded or "_expanded" not in n)
             and (a.filter is None or re.search(a.filter, n))]
    results = sweep(a.target, names, a.out, a.run)
    bad = {k: v for k, v in sorted(results.items()) if v != "ok"}
    print(f"{a.target}: {len(results) - len(bad)} of {len(results)} cases "
          f"{'ran correctly' if a.run else 'compiled'}")
    for name, why in bad.items():
        print(f"  {name}: {why}")


if __name__ == "__main__":
    main()
