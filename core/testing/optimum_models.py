"""Llama-style LLMs exported by Hugging Face optimum (issue 12: "the same
Hugging Face model exported through optimum also runs, matching onnxruntime"):

    folder = llama_optimum(layers=2, hidden=256)    # model.onnx, config.json, tokenizer.json
    sess = onnxruntime.InferenceSession(folder + "/model.onnx")
    result = optimum_greedy_decode(sess, folder + "/model.onnx", PROMPT, 16)

optimum's ONNX exporter lives in `optimum-onnx`, whose only release here
(0.1.0) requires transformers < 4.58, while tinyc's tests run transformers 5.
So the export runs in a side virtualenv made once (`optimum_python`):
`python -m venv --system-site-packages` (torch, onnx, tokenizers come from
this interpreter's packages) plus `pip install "transformers<4.58" optimum-onnx`
into it, in the platform cache folder beside the compile cache
(~/.cache/tinyc/optimum-venv; $TINYC_OPTIMUM_VENV moves it; the compile cache's
eviction removes only its own hex-named entries). Without a package index pip
fails, and so does `optimum_python`, with OptimumUnavailable saying why.

In that venv, optimum_hf_job.py saves `LlamaForCausalLM(LlamaConfig(...))`
with seeded random weights and grouped-query attention (kv_heads < heads) and
a word-level tokenizer (<unk> <s> </s>, then "t3".."t{vocab-1}"), then the
user's command exports it:

    optimum-cli export onnx --model HF_DIR --task text-generation-with-past OUT

OUT holds model.onnx (opset 18, transformers' sdpa attention decomposed into
MatMul/Softmax, the causal mask built from attention_mask by Range,
LessOrEqual, And, Where, and cut to the cache length by a Slice whose ends
come from a Shape), config.json, generation_config.json and the tokenizer
files. Its inputs are input_ids, attention_mask [batch_size,
"past_sequence_length + sequence_length"], position_ids and
past_key_values.{i}.key / value [batch_size, kv_heads, past_sequence_length,
head_dim]; its outputs logits and present.{i}.key / value.

Exports (~10 s) are kept like llama_export.py's, keyed by the arguments, the
requirements, torch's version and the text of this file and the job
($TINYC_LLM_MODEL_CACHE, default ~/.cache/tinyc-llm-models); a cached folder
needs no venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from . import optimum_hf_job
from .llama_export import default_cache_dir
from .llm_models import DecodeResult, greedy_decode

REQUIREMENTS = ("transformers<4.58", "optimum-onnx")
TASK = "text-generation-with-past"
_PROBE = ("import transformers, optimum.exporters.onnx; "
          "print(transformers.__version__)")


class OptimumUnavailable(RuntimeError):
    """The side venv could not be made (no package index, pip refused)."""


def llama_optimum(layers: int = 2, hidden: int = 256, heads: int = 8, kv_heads: int = 2,
                  intermediate: int = 512, vocab: int = 1000, positions: int = 2048,
                  seed: int = 0, init_std: float = 0.02,
                  folder: str | os.PathLike | None = None) -> str:
    """The folder of the export (model.onnx, config.json, tokenizer.json), in
    `folder` (default: the cache above)."""
    if hidden % heads or heads % kv_heads:
        raise ValueError(f"hidden {hidden}, heads {heads}, kv_heads {kv_heads}: hidden must be "
                         "a multiple of heads and heads of kv_heads")
    args = dict(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                intermediate=intermediate, vocab=vocab, positions=positions, seed=seed,
                init_std=init_std)
    root = os.fspath(folder) if folder is not None else default_cache_dir()
    os.makedirs(root, exist_ok=True)
    name = (f"llama_optimum_l{layers}_h{hidden}_a{heads}_kv{kv_heads}_v{vocab}_s{seed}"
            f"_{_key(args)}")
    out = os.path.join(root, name)
    if _complete(out):
        return out
    python = optimum_python()
    tmp = tempfile.mkdtemp(dir=root, prefix=name + ".tmp")
    try:
        _export(python, tmp, args)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, out)  # atomic: concurrent workers never read half a folder
        except OSError:  # another worker finished first
            if not _complete(out):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def optimum_python(venv: str | os.PathLike | None = None) -> str:
    """The python of the side venv with optimum-onnx, made on first use; one
    that no longer works (its base python moved, a broken install) is made again."""
    venv = Path(venv or default_venv_dir())
    python = venv / "bin" / "python"
    if _works(python):
        return str(python)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.with_name(venv.name + ".lock")):
        if not _works(python):  # (another process may have made it meanwhile)
            shutil.rmtree(venv, ignore_errors=True)
            try:
                _make_venv(venv)
                if not _works(python, fresh=True):
                    raise OptimumUnavailable(f"{venv}: optimum's exporter does not import "
                                             f"after installing {' '.join(REQUIREMENTS)}")
            except OptimumUnavailable:
                shutil.rmtree(venv, ignore_errors=True)  # no half-made venv left behind
                raise
    return str(python)


def default_venv_dir() -> Path:
    from ..paths import platform_cache_dir

    configured = os.environ.get("TINYC_OPTIMUM_VENV")
    return Path(configured) if configured else platform_cache_dir() / "optimum-venv"


def optimum_decoder_io(model_path: str):
    """The export's IO as `tinyc generate` reads it off the model (tinyc.llm.kv_cache)."""
    import onnx

    from ..llm.kv_cache import decoder_io
    from ..session_models import declared_inputs, declared_outputs

    proto = onnx.load(model_path, load_external_data=False)
    return decoder_io(declared_inputs(proto), declared_outputs(proto))


def optimum_greedy_decode(session, model_path: str, prompt_ids: Sequence[int], steps: int,
                          keep_logits: bool = True) -> DecodeResult:
    """llm_models.greedy_decode over the export: position_ids fed, presents
    asked for by name and fed back as the pasts."""
    io = optimum_decoder_io(model_path)
    return greedy_decode(session, prompt_ids, steps, past=io.empty_cache(), io=io,
                         keep_logits=keep_logits)


# --- the venv ---------------------------------------------------------------------------

_WORKING: set[str] = set()  # pythons checked in this process


def _works(python: Path, fresh: bool = False) -> bool:
    """Does optimum's exporter import there, with a transformers it accepts?"""
    if str(python) in _WORKING and not fresh:
        return True
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True)
    ok = done.returncode == 0 and _below(done.stdout.strip(), (4, 58))
    if ok:
        _WORKING.add(str(python))
    return ok


def _below(version: str, limit: tuple[int, int]) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")[:2]) < limit
    except ValueError:
        return False


def _make_venv(venv: Path) -> None:
    # --without-pip: the base python's pip, seen through the system site-packages,
    # installs into the venv (sys.prefix) as well, and seeding one takes seconds
    _run_or_unavailable([sys.executable, "-m", "venv", "--system-site-packages",
                         "--without-pip", str(venv)], f"creating the virtualenv {venv}")
    python = str(venv / "bin" / "python")
    _see_this_environment(python)
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode:
        _run_or_unavailable([python, "-m", "ensurepip", "-q"], f"seeding pip into {venv}")
    _run_or_unavailable([python, "-m", "pip", "install", "-q", *REQUIREMENTS],
                        f"pip install {' '.join(REQUIREMENTS)} into {venv}")


def _see_this_environment(python: str) -> None:
    """When this interpreter is itself a venv, --system-site-packages shows the
    new one the base python's packages only: a .pth adds this one's, so torch
    and onnx are found wherever they were installed, never downloaded again."""
    import sysconfig

    if sys.prefix == sys.base_prefix:
        return
    mine = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    theirs = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                             "['purelib'])"], capture_output=True, text=True, check=True)
    site = Path(theirs.stdout.strip())
    (site / "tinyc_parent_env.pth").write_text("".join(f"{p}\n" for p in sorted(mine)))


def _run_or_unavailable(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise OptimumUnavailable(f"{what}: no answer in 900 s") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        said = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
        raise OptimumUnavailable(f"{what} failed: {' / '.join(said)}")


@contextmanager
def _locked(path: Path):
    """One process makes the venv; the others wait for it (pytest-xdist workers)."""
    try:
        import fcntl
    except ModuleNotFoundError:  # no flock (Windows): the last writer wins
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- the export --------------------------------------------------------------------------

def _export(python: str, out: str, args: dict) -> None:
    hf = os.path.join(out, "hf")
    job = subprocess.run([python, optimum_hf_job.__file__, hf, json.dumps(args)],
                         capture_output=True, text=True)
    if job.returncode != 0:
        raise RuntimeError(f"saving the Hugging Face model failed:\n{job.stderr[-2000:]}")
    cmd = [python, "-m", "optimum.commands.optimum_cli", "export", "onnx", "--model", hf,
           "--task", TASK, out]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not _complete(out):
        raise RuntimeError(f"optimum's export failed:\n{done.stderr[-2000:]}")
    shutil.rmtree(hf)


def _complete(folder: str) -> bool:
    return all(os.path.exists(os.path.join(folder, f))
               for f in ("model.onnx", "config.json", "tokenizer.json"))


def _key(args: dict) -> str:
    import torch

    text = b""
    for source in (__file__, optimum_hf_job.__file__):
        with open(source, "rb") as f:
            text += f.read()
    h = hashlib.sha256(text + json.dumps([args, REQUIREMENTS, TASK, torch.__version__],
                                         sort_keys=True).encode())
    return h.hexdigest()[:12]
