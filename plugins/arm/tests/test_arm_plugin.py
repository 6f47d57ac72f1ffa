"""The arm plugin: its targets resolve, their intrinsics compile, it packages
artifacts (library, header, runner) and never gives a target instructions its
features lack. Running the artifacts under qemu is tested in tests/cross."""

from __future__ import annotations

import re

import pytest

import tinyc
from tinyc.plugin import TargetError, registry, resolve_device, zig_missing_reason
from tinyc.plugin.conformance import (  # noqa: F401 - collected by pytest here
    MODEL_CASES,
    test_intrinsics_emit,
    test_spec_resolves,
)
from tinyc_backend_arm.backend import qemu_aarch64_cpu
from tinyc_backend_arm.cortex_m import zig_cpu

TARGETS = ["aarch64", "arm64", "arm64-dotprod", "aarch64-cortex-a72", "aarch64-sve",
           "cortex-m4", "cortex-m7", "cortex-m55"]
SVE = re.compile(r"\b(z\d+\.[bhsd]|p\d+/[zm]|ptrue|whilelo)\b")
DOTPROD = re.compile(r"\b[su]dot\b|\bsmmla\b")


@pytest.fixture(params=TARGETS)
def tinyc_target(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def zig() -> None:
    reason = zig_missing_reason()
    if reason:
        pytest.skip(reason)


def mlp():
    return next(c for c in MODEL_CASES if c.name == "mlp").build()


def test_plugin_is_installed():
    reg = registry()
    assert reg.plugins["arm"].error is None
    assert reg.backends["arm"].plugin == "arm"
    assert "arm" in reg.runtime_devices["arm-qemu"].value.backends


@pytest.mark.parametrize("name", TARGETS)
def test_targets_are_buildable_with_the_cross_toolchain(name, zig):
    assert resolve_device(name).cpu.triple.startswith(("aarch64", "thumbv"))


def test_zig_cpu_names():
    assert zig_cpu("cortex-m55") == "cortex_m55"


def test_aarch64_runs_on_the_spec_core_when_qemu_models_it():
    assert qemu_aarch64_cpu("cortex-a72") == "cortex-a72"
    assert qemu_aarch64_cpu("generic") == "max"


def test_cortex_a72_code_has_no_sve_nor_dot_products(zig):
    art = tinyc.compile(mlp(), target="aarch64-cortex-a72",
                        options=tinyc.CompileOptions(emit=("asm",)))
    asm = art.listings["s"]
    assert "fmla" in asm or "fmul" in asm  # NEON code is there...
    assert not SVE.search(asm) and not DOTPROD.search(asm)  # ...and nothing it lacks
    assert art.meta["run"]["cpu"] == "cortex-a72"


def test_sve_target_gets_sve_instructions(zig):
    art = tinyc.compile(mlp(), target="aarch64-sve", options=tinyc.CompileOptions(emit=("asm",)))
    assert SVE.search(art.listings["s"])
    assert art.meta["run"]["cpu"] == "max"


def test_cortex_m_artifact_is_a_library_a_header_and_a_runner(zig, tmp_path):
    art = tinyc.compile(mlp(), target="cortex-m55")
    art.save(tmp_path)
    assert {"libmodel.a", "model.h", "model.elf", "model.json", "weights.bin"} <= {
        p.name for p in tmp_path.iterdir()}
    header = (tmp_path / "model.h").read_text()
    assert f"#define TINYC_ARENA_BYTES {art.meta['arena_bytes']}u" in header
    assert "int tinyc_run(void *const *inputs" in header
    assert art.meta["run"] == {"runner": "qemu-semihosting", "machine": "mps3-an547",
                               "program": "model.elf"}


@pytest.mark.parametrize("name", ["cortex-m4", "cortex-m55"])
def test_cortex_m_runtime_is_at_most_12_kib_of_text(name, zig):
    sizes = tinyc.compile(mlp(), target=name).meta["sizes"]
    assert 0 < sizes["runtime_text"] <= 12 * 1024, sizes
    assert sizes["weights"] > 0 and sizes["kernels"] > 0 and sizes["entry"] > 0


def test_a_model_too_big_for_the_sram_is_refused_with_the_numbers(zig):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 100_000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 100_000])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "big", [x], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(TargetError, match=r"needs \d+ KiB of RAM on cortex-m4 .* has 256 KiB"):
        tinyc.compile(model, target="cortex-m4")


# What tinyc's code for Armv7E-M calls (found by compiling the ONNX node suite
# for cortex-m4): integer and float helpers by their GNU names, and libm-like
# functions for float64, float16 and rounding.
HELPERS = ("memcpy memset __divdi3 __moddi3 __udivdi3 roundevenf roundeven floorf ceilf truncf "
           "sqrt floor ceil trunc fmod __fixsfdi __fixunssfdi __floatdisf __floatundisf "
           "__floatdidf __extendsfdf2 __truncdfsf2 __adddf3 __subdf3 __muldf3 __divdf3 __eqdf2 "
           "__gtdf2 __unorddf2 __extendhfsf2 __truncsfhf2 __addsf3 __fixsfsi").split()


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m55"])
def test_every_helper_the_generated_code_calls_links(cpu, zig, tmp_path):
    from tinyc.plugin import RUNTIME_C, harness_dir, run_zig
    from tinyc_backend_arm.cortex_m import CFLAGS, HERE, ZIG_TARGET

    refs = "".join(f"extern void {s}(void);\n" for s in HELPERS)
    refs += "void (*const volatile table[])(void) = {" + ", ".join(HELPERS) + "};\n"
    refs += "void _start(void) { for (;;) table[0](); }\n"
    (tmp_path / "refs.c").write_text(refs)
    sources = ["refs.c", f"{harness_dir()}/{RUNTIME_C}", str(HERE / "gnu_float_names.c")]
    run_zig(["cc", "-target", ZIG_TARGET, f"-mcpu={zig_cpu(cpu)}", *CFLAGS, "-w",
             "-Wl,--gc-sections", "-o", "refs.elf", *sources], str(tmp_path), "the helper check")
