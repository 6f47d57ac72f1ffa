"""A walk of every subcommand with bad arguments: each must end with one
`tinyc: error:` line and exit 1 (or 2 for usage errors), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from tests_support import small_model

from tinyc.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("badargs")
    model = small_model(d / "m.onnx")
    art = d / "art"
    assert main(["compile", model, "-o", str(art)]) == 0
    (d / "garbage.onnx").write_bytes(b"not a model at all")
    (d / "garbage.npz").write_bytes(b"not an npz")
    np.savez(d / "wrong_name.npz", nope=np.zeros((1, 3, 8, 8), np.float32))
    np.savez(d / "wrong_dtype.npz", x=np.zeros((1, 3, 8, 8), np.int32))
    (d / "a_file").write_text("a file, so nothing can be created under it")
    (d / "empty_dir").mkdir()
    (d / "llm").mkdir()  # an LLM folder whose every file is garbage
    for name in ("tokenizer.json", "config.json", "model.onnx"):
        (d / "llm" / name).write_text("garbage")
    return {"model": model, "art": str(art), "dir": str(d), "under_file": str(d / "a_file" / "x")}


CASES = [  # (name, argv with {placeholders}, exit codes allowed)
    ("no command", [], (2,)),
    ("unknown command", ["frobnicate"], (2,)),
    ("targets: unknown flag", ["targets", "--bogus"], (2,)),
    ("new-backend: no name", ["new-backend"], (2,)),
    ("new-backend: folder under a file", ["new-backend", "foo", "-o", "{under_file}"], (1,)),
    ("new-backend: bad --extends", ["new-backend", "foo", "-o", "{dir}/nb", "--extends",
                                    "nope"], (1, 2)),
    ("new-backend: bad --kind", ["new-backend", "foo", "-o", "{dir}/nb", "--kind", "gpu"], (2,)),
    ("compile: missing model", ["compile", "{dir}/missing.onnx", "-o", "{dir}/o"], (1,)),
    ("compile: not a model", ["compile", "{dir}/garbage.onnx", "-o", "{dir}/o"], (1,)),
    ("compile: no -o", ["compile", "{model}"], (2,)),
    ("compile: unwritable -o", ["compile", "{model}", "-o", "{under_file}"], (1,)),
    ("compile: bad --target", ["compile", "{model}", "-o", "{dir}/o", "--target", "nope"],
     (1, 2)),
    ("compile: bad --emit", ["compile", "{model}", "-o", "{dir}/o", "--emit", "pdf"], (1,)),
    ("compile: bad --report", ["compile", "{model}", "-o", "{dir}/o", "--report=some"], (2,)),
    ("compile: --shape syntax", ["compile", "{model}", "-o", "{dir}/o", "--shape", "x"], (2,)),
    ("compile: --shape not ints", ["compile", "{model}", "-o", "{dir}/o", "--shape", "x=a,b"],
     (2,)),
    ("compile: --shape unknown input", ["compile", "{model}", "-o", "{dir}/o", "--shape",
                                        "y=1,3,8,8"], (1,)),
    ("compile: --shape wrong rank", ["compile", "{model}", "-o", "{dir}/o", "--shape", "x=1,3"],
     (1,)),
    ("compile: --hint syntax", ["compile", "{model}", "-o", "{dir}/o", "--hint", "batch"], (2,)),
    ("run: missing model", ["run", "{dir}/missing.onnx"], (1,)),
    ("run: not a model", ["run", "{dir}/garbage.onnx"], (1,)),
    ("run: folder that is no artifact", ["run", "{dir}/empty_dir"], (1,)),
    ("run: missing --inputs", ["run", "{art}", "--inputs", "{dir}/missing.npz"], (1,)),
    ("run: --inputs not an npz", ["run", "{art}", "--inputs", "{dir}/garbage.npz"], (1,)),
    ("run: --inputs wrong names", ["run", "{art}", "--inputs", "{dir}/wrong_name.npz"], (1,)),
    ("run: --inputs wrong dtype", ["run", "{art}", "--inputs", "{dir}/wrong_dtype.npz"], (1,)),
    ("run: --profile without counters", ["run", "{art}", "--profile"], (1,)),
    ("run: bad --target", ["run", "{model}", "--target", "nope"], (1, 2)),
    ("run: unwritable --outputs", ["run", "{art}", "--outputs", "{under_file}"], (1,)),
    ("run: --check on a folder", ["run", "{art}", "--check"], (1,)),
    ("run: --shape syntax", ["run", "{model}", "--shape", "=1"], (2,)),
    ("run: --shape wrong dims", ["run", "{model}", "--shape", "x=2,3,8,8"], (1,)),
    ("explain: missing model", ["explain", "{dir}/missing.onnx"], (1,)),
    ("explain: bad --target", ["explain", "{model}", "--target", "x86,nope"], (1, 2)),
    ("explain: unwritable --json", ["explain", "{model}", "--json", "{under_file}"], (1,)),
    ("cache: no action", ["cache"], (2,)),
    ("cache: unknown action", ["cache", "shrink"], (2,)),
    ("cache: bad --max-size", ["cache", "prune", "--max-size", "lots"], (1,)),
    ("generate: missing folder", ["generate", "{dir}/missing", "--prompt", "hi"], (1,)),
    ("generate: folder without tokenizer", ["generate", "{dir}/empty_dir", "--prompt", "hi"],
     (1,)),
    ("generate: bad tokenizer.json", ["generate", "{dir}/llm", "--prompt", "hi"], (1,)),
    ("generate: no --prompt", ["generate", "{dir}/empty_dir"], (2,)),
    ("generate: bad --top-p", ["generate", "{dir}/empty_dir", "--prompt", "hi", "--top-p",
                               "2"], (2,)),
    ("generate: bad --max-new-tokens", ["generate", "{dir}/empty_dir", "--prompt", "hi",
                                        "--max-new-tokens", "-3"], (2,)),
    ("tune: no model", ["tune", "--trials", "3"], (1,)),
    ("tune: missing model", ["tune", "{dir}/missing.onnx", "--log", "{dir}/t.jsonl"], (1,)),
    ("tune: bad --time-budget", ["tune", "{model}", "--time-budget", "soon"], (2,)),
    ("tune: --trials 0", ["tune", "{model}", "--trials", "0"], (2,)),
    ("tune: --trials and --time-budget", ["tune", "{model}", "--trials", "3",
                                          "--time-budget", "1m"], (2,)),
    ("tune: --merge without -o", ["tune", "--merge", "{dir}/a.jsonl"], (1,)),
    ("tune: --merge missing log", ["tune", "--merge", "{dir}/a.jsonl", "-o", "{dir}/m.jsonl"],
     (1,)),
    ("tune: --merge corrupt log", ["tune", "--merge", "{dir}/garbage.npz", "-o",
                                   "{dir}/m.jsonl"], (1,)),
    ("compile: missing --tuning-log", ["compile", "{model}", "-o", "{dir}/o", "--tuning-log",
                                       "{dir}/missing.jsonl"], (1,)),
]


@pytest.mark.parametrize("name,argv,codes", CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_end_in_one_error_line(files, capsys, name, argv, codes):
    argv = [a.format(**files) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code in codes, f"{name}: exit {code}\n{err}"
    assert "tinyc: error:" in err, err
    assert "Traceback" not in err


def test_bad_arguments_in_a_real_process(files):
    """The same through `python -m tinyc`: the exit code and stderr a shell sees."""
    for argv in (["run", "--inputs", os.path.join(files["dir"], "missing.npz"), files["art"]],
                 ["compile", files["model"], "-o", files["under_file"]]):
        r = subprocess.run([sys.executable, "-m", "tinyc", *argv], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith("tinyc: error:") and "Traceback" not in r.stderr


def test_version_and_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "tinyc", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("tinyc ")


def test_profile_on_a_split_target_prints_the_timeline(files, capsys):
    """A float model: accel_sim takes none of it, so the deployment runs as one
    CPU region and the profile is the per-node one (no AttributeError either way)."""
    assert main(["run", files["model"], "--target", "x86,accel_sim", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "where the time went" in out or "region" in out


def test_a_hint_may_be_zero():
    """--hint past_sequence_length=0: the artifact then serves an empty KV cache."""
    import argparse

    from tinyc.cli_args import hint_arg

    assert hint_arg("past_sequence_length=0") == ("past_sequence_length", 0)
    for bad in ("past=-1", "past=", "=3", "past=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            hint_arg(bad)
