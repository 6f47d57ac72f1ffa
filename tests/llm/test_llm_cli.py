"""`tinyc generate` as a user runs it: a subprocess whose stdout is read as
it streams; Ctrl-C; bad folders and arguments give one error line."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tinyc.cli import main

PROMPT = "Once upon a time there was"


def _tinyc(*args: str, cache: str, **popen):
    env = {**os.environ, "TINYC_CACHE_DIR": cache}
    return subprocess.Popen([sys.executable, "-m", "tinyc", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_streamed_text_is_the_api_text_then_the_speeds(gpt2_dirs, gpt2_lm, llm_cache):
    proc = _tinyc("generate", gpt2_dirs["hf"], "--prompt", PROMPT, "--max-new-tokens", "30",
                  "--target", "x86", cache=llm_cache)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    want = gpt2_lm.generate(PROMPT, 30)
    assert out.decode() == "".join(want) + "\n"
    assert "prefill" in err.decode() and "tokens/s" in err.decode()
    assert "stopped: max_new_tokens" in err.decode()


def test_json_is_one_document_with_tokens_and_figures(gpt2_dirs, gpt2_lm, llm_cache):
    proc = _tinyc("generate", gpt2_dirs["genai"], "--prompt", PROMPT, "--max-new-tokens", "8",
                  "--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--seed", "3",
                  "--target", "x86", "--json", cache=llm_cache)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    want = gpt2_lm.generate(PROMPT, 8, token_ids=True)
    from tinyc.llm import Sampling

    sampled = gpt2_lm.generate(PROMPT, 8, Sampling(0.8, 20, 0.9, 3), token_ids=True)
    assert result["tokens"] == list(sampled) != list(want)
    assert result["compiles"] == 0  # the symbolic artifact from the cache: no compile
    assert result["new_tokens"] == 8 and result["decode_tokens_per_s"] > 0


def test_ctrl_c_mid_generation_prints_what_was_made_and_exits_130(gpt2_dirs, llm_cache):
    proc = _tinyc("generate", gpt2_dirs["no_eos"], "--prompt", PROMPT, "--max-new-tokens",
                  "100000", "--target", "x86", cache=llm_cache)
    # a one-page pipe: the generation blocks on a full pipe until read, so it
    # cannot end before the signal (2,000 tokens would fill it several times)
    fcntl.fcntl(proc.stdout.fileno(), 1031, 4096)  # F_SETPIPE_SZ
    first = b""
    deadline = time.monotonic() + 120
    while len(first) < 16 and time.monotonic() < deadline:
        first += os.read(proc.stdout.fileno(), 64)  # text arrives while it generates
    assert first and proc.poll() is None
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert "stopped: interrupted" in err.decode() and "tokens/s" in err.decode()
    assert len(first + rest) > 16


def test_bad_folders_are_one_error_line_without_traceback(tmp_path, gpt2_dirs):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "tinyc", "generate", str(tmp_path / "empty"),
                           "--prompt", "hi"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"tinyc: error: {tmp_path / 'empty'} has no tokenizer.json (the Hugging Face tokenizers "
        f"file: tokenizer.save(...) or AutoTokenizer.save_pretrained writes it)"]
    assert proc.stdout == ""


@pytest.mark.parametrize("remove, message", [
    ("config.json", "neither genai_config.json"), ("model.onnx", "no .onnx model"),
    ("tokenizer.json", "no tokenizer.json")])
def test_each_missing_file_is_named(tmp_path, capsys, gpt2_dirs, remove, message):
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("config.json", "model.onnx", "tokenizer.json"):
        if name != remove:
            os.symlink(os.path.join(gpt2_dirs["hf"], name), folder / name)
    assert main(["generate", str(folder), "--prompt", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinyc: error:") and message in err


@pytest.mark.parametrize("args", [["--top-p", "0"], ["--temperature", "-1"],
                                  ["--max-new-tokens", "x"], ["--threads", "0"], []])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "somewhere", *args] if args else ["generate", "somewhere"])
    assert e.value.code == 2
    assert "tinyc: error: generate:" in capsys.readouterr().err
