"""Run a fuzz sweep over the corpus (cases.py) and print outcomes by category.

python tests/fuzz/report.py [cases per category, default 220]

The cases are split over two runner processes (runner.py), which fork one
child per case. A failure is any outcome other than "ok" or a TinycError
subclass: another exception, a crash, a hang, or a wrong answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cases  # noqa: E402

FAILURES = ("other:", "crash:", "hang", "wrong")


def run_sweep(per_category: int, start: int = 0, workers: int = 2) -> list[dict]:
    todo = cases.corpus(per_category, start)
    shares = [todo[k::workers] for k in range(workers)]
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "runner.py")], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in shares]
    for p, share in zip(procs, shares, strict=True):
        p.stdin.write(json.dumps(share))
        p.stdin.close()
    results = []
    for p, share in zip(procs, shares, strict=True):
        lines = [json.loads(line) for line in p.stdout if line.startswith("{")]
        p.wait()
        done = {(r["category"], r["seed"]) for r in lines}
        results += lines + [{"category": c, "seed": s, "outcome": f"crash:runner{p.returncode}",
                             "detail": "the runner died"} for c, s in share if (c, s) not in done]
    return results


def is_failure(result: dict) -> bool:
    return result["outcome"].startswith(FAILURES)


def table(results: list[dict]) -> str:
    """Rows: categories; columns: ok, refused (by TinycError subclass), failures."""
    def column(outcome: str) -> str:
        return outcome if outcome == "ok" or is_failure({"outcome": outcome}) else \
            f"refused:{outcome}"

    counts = Counter((r["category"], column(r["outcome"])) for r in results)
    cols = sorted({c for _, c in counts}, key=lambda c: (is_failure({"outcome": c}), c))
    names = [c.removeprefix("refused:").replace("Error", "") for c in cols]

    def line(first: str, cells: list) -> str:
        return first.ljust(18) + "".join(str(v).rjust(len(n) + 2) for v, n in
                                         zip(cells, [*names, "total"], strict=True))

    lines = [line("category", [*names, "total"])]
    lines.append("-" * len(lines[0]))
    for cat in cases.CATEGORIES:
        row = [counts.get((cat, c), 0) for c in cols]
        lines.append(line(cat, [*row, sum(row)]))
    totals = [sum(counts.get((cat, c), 0) for cat in cases.CATEGORIES) for c in cols]
    lines.append(line("total", [*totals, len(results)]))
    lines.append("refused: the TinycError subclass named; any column other/crash/hang/wrong "
                 "is a failure")
    return "\n".join(lines)


def main() -> None:
    per = int(sys.argv[1]) if len(sys.argv) > 1 else 220
    results = run_sweep(per)
    print(table(results))
    bad = [r for r in results if is_failure(r)]
    for r in bad:
        print(f"\n{r['category']} seed {r['seed']}: {r['outcome']}\n{r['detail']}")
    print(f"\n{len(results)} cases, {len(bad)} failures")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
