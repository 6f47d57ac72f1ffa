"""Cortex-M artifacts: a static library for the user's firmware, and a bare-metal
runner for qemu-system-arm's Arm MPS2/MPS3 boards, with I/O over semihosting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyc.plugin import (
    RUNTIME_C,
    CompiledModel,
    CrossBuild,
    Package,
    TargetError,
    bare_metal_memory,
    io_file_bytes,
    parse_size,
    part_sizes,
)

HERE = Path(__file__).parent / "cortex_m"
STACK_BYTES = 16 << 10

# The C parts (and zig's compiler-rt, with the sqrt / floor / double-precision
# routines the generated code may call) are built for the soft-float calling
# convention, which llvmlite's code uses even for *-eabihf triples. zig's -eabi
# targets build them without the FPU: tinyc_rt's hot functions use integer
# operations; the generated code itself uses the FPU and MVE of the spec.
ZIG_TARGET = "thumb-freestanding-eabi"
CFLAGS = ("-Os", "-ffreestanding", "-fno-builtin", "-fno-unwind-tables",
          "-fno-asynchronous-unwind-tables")


@dataclass(frozen=True)
class Board:
    """A board qemu-system-arm emulates, and where its memories are."""

    machine: str
    code_origin: int
    code_bytes: int
    ram_origin: int
    ram_bytes: int
    clock_hz: int  # the processor clock SysTick counts (qemu's model of the board)


# By core: Arm's FPGA images for the MPS2 and MPS3 boards, as qemu models them.
BOARDS = {
    "cortex-m3": Board("mps2-an385", 0x0, 4 << 20, 0x20000000, 4 << 20, 25_000_000),
    "cortex-m4": Board("mps2-an386", 0x0, 4 << 20, 0x20000000, 4 << 20, 25_000_000),
    "cortex-m7": Board("mps2-an500", 0x0, 4 << 20, 0x20000000, 4 << 20, 25_000_000),
    "cortex-m55": Board("mps3-an547", 0x0, 512 << 10, 0x20000000, 512 << 10,  # ITCM, DTCM
                        32_000_000),
}


def zig_cpu(cpu: str) -> str:
    return cpu.replace("-", "_")  # cortex-m55 -> cortex_m55


def package(model: CompiledModel) -> Package:
    """libmodel.a (code, weights, tinyc_rt), model.h, and model.elf for the core's board."""
    board = BOARDS.get(model.cpu.cpu)
    code_bytes, ram_bytes = _memory_limits(model, board)
    _check_ram(model, ram_bytes)
    _check_flash(model, code_bytes)
    flags = ("-mcpu=" + zig_cpu(model.cpu.cpu), *CFLAGS)
    with CrossBuild(model, ZIG_TARGET, flags) as build:
        objects = [build.compile_c(RUNTIME_C), build.compile_c(str(HERE / "gnu_float_names.c"))]
        files = build.library_files(["model.o", "weights.o", *objects])
        if board is None:  # a core no emulated board has: the library alone
            return Package(files, {"sizes_note": f"no emulated board for {model.cpu.cpu}"})
        files["model.elf"] = _runner(build, board, code_bytes, ram_bytes)
        sizes = part_sizes(files["model.elf"], model)
    memory = bare_metal_memory(files["model.elf"], model, STACK_BYTES, code_bytes, ram_bytes)
    run = {"runner": "qemu-semihosting", "machine": board.machine, "program": "model.elf"}
    return Package(files, {"run": run, "sizes": sizes, "memory": memory})


def _runner(build: CrossBuild, board: Board, code_bytes: int, ram_bytes: int) -> bytes:
    script = (HERE / "link.ld.in").read_text()
    for key, value in {"BOARD": board.machine, "CODE_ORIGIN": hex(board.code_origin),
                       "CODE_BYTES": str(code_bytes), "RAM_ORIGIN": hex(board.ram_origin),
                       "RAM_BYTES": str(ram_bytes), "STACK_BYTES": str(STACK_BYTES)}.items():
        script = script.replace(f"@{key}@", value)
    build.write("link.ld", script.encode())
    return build.link_runner([str(HERE / "startup.c")], ["-T", "link.ld", "-Wl,--gc-sections",
                                                         "-Wl,--entry=tinyc_reset"])


def _memory_limits(model: CompiledModel, board: Board | None) -> tuple[int, int]:
    """Code and RAM bytes: the spec's flash and sram, within what the board has."""
    memories = model.spec.memories
    code = parse_size(memories["flash"]["size"]) if "flash" in memories else None
    ram = parse_size(memories["sram"]["size"]) if "sram" in memories else None
    if board is not None:
        code = min(code or board.code_bytes, board.code_bytes)
        ram = min(ram or board.ram_bytes, board.ram_bytes)
    return code or 0, ram or 0


def _check_ram(model: CompiledModel, ram_bytes: int) -> None:
    meta = model.meta
    need = (meta["arena_bytes"] + io_file_bytes(meta["inputs"]) + io_file_bytes(meta["outputs"])
            + STACK_BYTES)
    if ram_bytes and need > ram_bytes:
        raise TargetError(f"the model needs {need / 1024:.0f} KiB of RAM on {meta['target']} "
                          f"(arena {meta['arena_bytes'] / 1024:.0f} KiB, inputs and outputs, "
                          f"{STACK_BYTES >> 10} KiB stack) and the target has "
                          f"{ram_bytes / 1024:.0f} KiB; use a smaller model or input")


def _check_flash(model: CompiledModel, code_bytes: int) -> None:
    """Weights alone past the flash: say so in numbers before the linker fails."""
    weights = len(model.weights)
    if code_bytes and weights > code_bytes:
        raise TargetError(f"the model's weights take {weights / 1024:.0f} KiB and "
                          f"{model.meta['target']} has {code_bytes / 1024:.0f} KiB of flash; "
                          "use a smaller model")
