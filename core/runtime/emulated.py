"""Running cross artifacts under an emulator (qemu-user, qemu-system with semihosting).

The artifact's runner program (core/link/harness) reads the inputs from one
file and writes the outputs to another; each run() writes the feeds, runs the
program once under the emulator named in model.json ("run"), and reads the
results. A crash of the emulated program (an illegal instruction, a fault, a
time-out) is a RunError that says what happened, never a crash of Python.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from ..errors import TargetError, TinycError
from .native import TensorInfo, checked_feeds, output_indices

IO_ALIGN = 64  # tinyc_harness.h: every tensor in the I/O files starts aligned
EXIT_GUARD = 68  # tinyc_harness.h: symbolic sizes break a guard
TIMEOUT_S = 600.0

# Exit codes of tinyc_harness.h
_EXIT_MEANING = {64: "the runner was started with the wrong command line",
                 65: "the runner could not read its inputs or write its outputs",
                 66: "tinyc_run returned an error",
                 67: "the CPU faulted (e.g. an instruction or memory access this core "
                     "does not support)",
                 68: "the run's sizes break a guard of the compiled model"}


class RunError(TinycError):
    """The emulated program failed: a signal, a fault, a time-out or an error status."""


@dataclass(frozen=True)
class Emulator:
    tool: str  # the executable, e.g. qemu-aarch64
    install: str  # how to get it, e.g. "apt-get install qemu-user"
    args: tuple[str, ...]  # options before the program
    semihosting: bool = False  # the program is a bare-metal kernel (qemu-system)

    def missing_reason(self) -> str | None:
        if shutil.which(self.tool) is None:
            return f"{self.tool} is not installed ({self.install})"
        return None

    def command(self, program: str, in_name: str, out_name: str) -> list[str]:
        if self.semihosting:
            return [self.tool, *self.args, "-kernel", program, "-append", f"{in_name} {out_name}"]
        return [self.tool, *self.args, program, in_name, out_name]

    def describe(self) -> str:
        return " ".join([self.tool, *self.args])


def qemu_user(tool: str, cpu: str) -> Emulator:
    return Emulator(tool, "apt-get install qemu-user", ("-cpu", cpu))


def qemu_semihosting(machine: str) -> Emulator:
    return Emulator("qemu-system-arm", "apt-get install qemu-system-arm",
                    ("-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
                     "-semihosting-config", "enable=on,target=native"), semihosting=True)


def emulator_for(run: dict) -> Emulator:
    """The emulator model.json's "run" asks for."""
    if run.get("runner") == "qemu-user":
        return qemu_user(run["qemu"], run["cpu"])
    if run.get("runner") == "qemu-semihosting":
        return qemu_semihosting(run["machine"])
    raise TargetError(f"unknown runner {run.get('runner')!r} in model.json")


class EmulatedModel:
    """A cross artifact run under an emulator, one process per run() call."""

    def __init__(self, directory: str, meta: dict, emulator: Emulator,
                 timeout_s: float = TIMEOUT_S):
        reason = emulator.missing_reason()
        if reason:
            raise TargetError(f"cannot run {meta['target']} artifacts here: {reason}")
        self.meta = meta
        self.emulator = emulator
        self.timeout_s = timeout_s
        self.program = os.path.abspath(os.path.join(directory, meta["run"]["program"]))
        self.inputs = [TensorInfo(t["name"], t["shape"], t["dtype"]) for t in meta["inputs"]]
        self.outputs = [TensorInfo(t["name"], t["shape"], t["dtype"]) for t in meta["outputs"]]
        sym = meta.get("symbolic")
        self.symbols: list[str] = list(sym["symbols"]) if sym else []
        self._guard_texts: list[str] = list(sym["guards"]) if sym else []
        self._minima = list((sym or {}).get("minima") or [1] * len(self.symbols))

    def accepts(self, values: tuple[int, ...]) -> bool:
        """Sizes within the symbols' ranges (the guards themselves are checked
        by the runner, which refuses a run that breaks one)."""
        return bool(self.symbols) and all(
            v >= m for v, m in zip(values, self._minima, strict=True))

    def get_inputs(self) -> list[TensorInfo]:
        return list(self.inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self.outputs)

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.symbols:
            wanted = output_indices(self.outputs, output_names)
            outs = self._run_symbolic(feeds)
            return [outs[j] for j in wanted]
        arrays = checked_feeds(self.inputs, feeds)
        wanted = output_indices(self.outputs, output_names)
        with tempfile.TemporaryDirectory(prefix="tinyc-run-") as tmp:
            with open(os.path.join(tmp, "in.bin"), "wb") as f:
                f.write(pack_tensors(arrays))
            self._execute(tmp)
            with open(os.path.join(tmp, "out.bin"), "rb") as f:
                outs = unpack_tensors(f.read(), self.outputs)
        return [outs[j] for j in wanted]

    def profile(self) -> list[tuple[str, str, float]]:
        raise TinycError("per-node profiles need an artifact that runs in this process")

    def _run_symbolic(self, feeds: dict) -> list[np.ndarray]:
        """The symbolic runner (tinyc_harness_sym.c): the dims go first in the
        inputs file; the outputs file starts with every size tinyc_sizes wrote."""
        from .symbolic import ShapeGuardError, bind_sizes

        arrays, values = bind_sizes(self.inputs, self.symbols, feeds)
        named = ", ".join(f"{s}={v}" for s, v in zip(self.symbols, values, strict=True))
        if not self.accepts(values):
            raise ShapeGuardError(f"symbolic dimensions out of range: {named}")
        header = pack_tensors([np.array(values, "<i8")])
        n_sizes = 1 + sum(len(t.shape) for t in (*self.outputs, *self.inputs))
        with tempfile.TemporaryDirectory(prefix="tinyc-run-") as tmp:
            with open(os.path.join(tmp, "in.bin"), "wb") as f:
                f.write(header + pack_tensors(arrays))
            guard = self._execute(tmp)
            if guard:
                raise ShapeGuardError(f"sizes {named} break the compiled guard "
                                      f"'{self._guard_texts[guard - 1]}'")
            with open(os.path.join(tmp, "out.bin"), "rb") as f:
                data = f.read()
        sizes = np.frombuffer(data, "<i8", n_sizes).tolist()
        shapes, k = [], 1
        for info in self.outputs:
            shapes.append(tuple(sizes[k:k + len(info.shape)]))
            k += len(info.shape)
        for info, a in zip(self.inputs, arrays, strict=True):
            want = tuple(sizes[k:k + a.ndim])
            k += a.ndim
            if a.shape != want:
                raise ShapeGuardError(f"input '{info.name}' has shape {list(a.shape)}, but "
                                      f"the sizes {named} make it {list(want)}")
        infos = [TensorInfo(o.name, list(s), o.dtype) for o, s in zip(self.outputs, shapes,
                                                                     strict=True)]
        return unpack_tensors(data[len(pack_tensors([np.zeros(n_sizes, "<i8")])):], infos)

    def _execute(self, cwd: str) -> int:
        """Run the program; 0, or the 1-based guard a symbolic runner refused."""
        argv = self.emulator.command(self.program, "in.bin", "out.bin")
        try:
            r = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise RunError(f"{self._what()} did not finish in {self.timeout_s:.0f} s") from None
        if r.returncode == EXIT_GUARD:
            found = re.search(rb"tinyc-guard (\d+)", r.stderr)
            if found and 0 < int(found.group(1)) <= len(self._guard_texts):
                return int(found.group(1))
        if r.returncode != 0:
            raise RunError(f"{self._what()} failed: {_explain(r.returncode)}"
                           + _tail(r.stderr or r.stdout))

    def _what(self) -> str:
        return f"the {self.meta['target']} model under {self.emulator.describe()}"


def pack_tensors(arrays: list[np.ndarray]) -> bytes:
    """Tensors in order, each padded with zeros to a multiple of IO_ALIGN bytes."""
    return b"".join(a.tobytes() + bytes(-a.nbytes % IO_ALIGN) for a in arrays)


def unpack_tensors(data: bytes, infos: list[TensorInfo]) -> list[np.ndarray]:
    out, offset = [], 0
    for info in infos:
        dtype = np.dtype(info.dtype)
        count = int(np.prod(info.shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        if offset + nbytes > len(data):
            raise RunError(f"the runner wrote {len(data)} bytes of outputs; expected more")
        out.append(np.frombuffer(data, dtype, count, offset).reshape(info.shape).copy())
        offset += nbytes + (-nbytes % IO_ALIGN)
    return out


def _explain(status: int) -> str:
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.valid_signals() else -status
        if -status == signal.SIGILL:
            return (f"killed by {name}: an illegal instruction, i.e. the code uses a feature "
                    "(e.g. SVE, dotprod, the V extension) this CPU does not have")
        return f"killed by signal {name}"
    return _EXIT_MEANING.get(status, f"exit status {status}")


def _tail(output: bytes, limit: int = 800) -> str:
    text = output.decode(errors="replace").strip()
    return f"\n{text[-limit:]}" if text else ""


def load_emulated(directory: str | os.PathLike, **run: str) -> EmulatedModel:
    """Load a cross artifact whose model.json says how to run it ("run").

    Keywords override those fields, e.g. cpu="cortex-a72" (qemu-user's -cpu) or
    machine="mps2-an386" (qemu-system's board), to try an artifact on a core
    other than the one it was built for."""
    from .devices import read_meta

    d = os.fspath(directory)
    meta = read_meta(d)
    if "run" not in meta:
        raise TargetError(f"{d}: the {meta.get('target')} artifact has no runner program "
                          f"({meta.get('sizes_note', 'nothing to emulate')})")
    meta["run"] = {**meta["run"], **run}
    return EmulatedModel(d, meta, emulator_for(meta["run"]))


def tools_missing_reason(tools: dict[str, str]) -> str | None:
    """None if any of `tools` (executable -> how to install it) is installed."""
    if any(shutil.which(t) for t in tools):
        return None
    return "none of " + ", ".join(f"{t} ({how})" for t, how in tools.items()) + " is installed"
