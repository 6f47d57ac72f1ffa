"""The pieces of cross artifacts that need no toolchain: model.h, the runner's
file layout, the weights object and the ELF reader that measures programs."""

from __future__ import annotations

import numpy as np

from tinyc.link.cross import io_file_bytes, model_header, weights_object
from tinyc.link.elf import Elf
from tinyc.runtime.emulated import pack_tensors, unpack_tensors
from tinyc.runtime.native import TensorInfo
from tinyc.target.machine import CpuTarget

META = {"tinyc_version": "0.1.0", "target": "cortex-m55", "triple": "thumbv8.1m.main-none-eabi",
        "arena_bytes": 1216, "weights_bytes": 4776,
        "inputs": [{"name": "x", "dtype": "float32", "shape": [4, 20]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [4, 10]},
                    {"name": "i", "dtype": "int64", "shape": [3]}]}


def test_header_declares_the_entry_the_weights_and_the_sizes():
    h = model_header(META)
    for line in ("#define TINYC_ARENA_BYTES 1216u", "#define TINYC_NUM_INPUTS 1",
                 "#define TINYC_NUM_OUTPUTS 2", "#define TINYC_INPUT_BYTES {320u}",
                 "#define TINYC_OUTPUT_BYTES {160u, 24u}",
                 "extern const unsigned char tinyc_weights[];",
                 "int tinyc_run(void *const *inputs, void *const *outputs, const void *weights,"):
        assert line in h
    assert "/* output 1: i, int64[3], 24 bytes */" in h


def test_io_files_pad_every_tensor_to_64_bytes():
    assert io_file_bytes(META["inputs"]) == 320
    assert io_file_bytes(META["outputs"]) == 192 + 64
    infos = [TensorInfo("y", [4, 10], "float32"), TensorInfo("i", [3], "int64")]
    arrays = [np.arange(40, dtype=np.float32).reshape(4, 10), np.array([7, -1, 2**40])]
    data = pack_tensors(arrays)
    assert len(data) == 256
    for got, want in zip(unpack_tensors(data, infos), arrays, strict=True):
        np.testing.assert_array_equal(got, want)


def test_weights_object_holds_the_bytes_under_their_symbol():
    weights = bytes(range(256)) * 3
    obj = Elf(weights_object(weights, CpuTarget("thumbv7em-none-eabi", "cortex-m4", "", 32)))
    assert obj.symbol_sizes()["tinyc_weights"] == len(weights)
    assert obj.loaded_bytes(code=False) == len(weights) and obj.loaded_bytes(code=True) == 0
    assert weights in obj.data
