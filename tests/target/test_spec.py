"""Spec files: schema validation with file:line:field messages, extends, user specs."""

from __future__ import annotations

import pytest

from tinyc.errors import SpecError
from tinyc.target import resolve_spec_by_name
from tinyc.target.spec import parse_size, read_spec_file


def _write(tmp_path, text: str, name: str = "board.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _error(path: str) -> str:
    with pytest.raises(SpecError) as e:
        resolve_spec_by_name(path)
    return str(e.value)


def test_user_spec_extends_a_shipped_one(tmp_path):
    path = _write(tmp_path, "name: myboard\nextends: x86-avx2\nvector_bits: 128\n")
    spec = resolve_spec_by_name(path)
    assert spec.backend == "x86" and spec.vector_bits == 128 and spec.cpu == "haswell"


def test_avx512_extends_avx2_and_mappings_merge_key_by_key():
    spec = resolve_spec_by_name("x86-avx512")
    assert spec.extends == "x86-avx2" and spec.vector_bits == 512
    assert parse_size(spec.caches["l2"]["size"]) == 1 << 20  # its own
    assert spec.caches["l1d"]["size"] == "32KiB"  # from x86-avx2
    assert spec.where["cpu"].endswith("x86-avx512.yaml:4")
    assert spec.where["triple"].endswith("x86-avx2.yaml:4")


def test_misspelled_key_names_file_line_and_field(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\nvectr_bits: 256\n")
    msg = _error(path)
    assert msg.startswith(f"{path}:3: unknown field 'vectr_bits' (did you mean 'vector_bits'?)")
    assert "expected one of: accelerator, backend," in msg


def test_misspelled_nested_key(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\ncaches:\n  l2:\n    size: 1MiB\n"
                            "    line_byte: 64\n")
    assert _error(path).startswith(f"{path}:6: unknown field 'caches.l2.line_byte' "
                                   "(did you mean 'line_bytes'?)")


def test_wrong_type_says_what_was_expected(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\nvector_bits: [256]\n")
    assert _error(path) == (f"{path}:3: field 'vector_bits' is a list [256]; expected the "
                            "widest SIMD register in bits (128, 256, 512...), or 'host'")


def test_unknown_dtype_is_named_with_its_line(tmp_path):
    path = _write(tmp_path, "name: npu\nbackend: accel_sim\naccelerator:\n  kind: gemm\n"
                            "  dtypes: {input: int8, weight: unit8}\n")
    msg = _error(path)
    assert msg.startswith(f"{path}:5: field 'accelerator.dtypes.weight' is text 'unit8'; "
                          "expected a dtype name: bfloat16, bool,")
    assert msg.endswith("(did you mean 'uint8'?)")


def test_bad_size_and_feature(tmp_path):
    size = _write(tmp_path, "name: b\nbackend: x86\nmemories:\n  sram: {size: 64 kilobytes}\n")
    assert "4: field 'memories.sram.size' is text '64 kilobytes'; expected a size" in _error(size)
    feat = _write(tmp_path, "name: b\nbackend: x86\nfeatures: [+avx2, fma]\n", "f.yaml")
    assert "f.yaml:3: field 'features[1]' is text 'fma'; expected" in _error(feat)


def test_one_message_for_several_problems(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\ncpu: 7\nvectr_bits: 1\n")
    msg = _error(path)
    assert msg.startswith(f"{path}:3: field 'cpu' is an integer 7")
    assert msg.endswith("(and 1 more problem(s))") and msg.count("\n") == 0


def test_missing_name_and_backend(tmp_path):
    assert ":1: missing field 'name'" in _error(_write(tmp_path, "backend: x86\n"))
    msg = _error(_write(tmp_path, "name: b\ncpu: generic\n", "nb.yaml"))
    assert "nb.yaml:1: spec 'b' has no field 'backend'" in msg


def test_extends_unknown_and_cycles(tmp_path):
    path = _write(tmp_path, "name: b\nextends: x86-avx3\n")
    assert _error(path).startswith(f"{path}:2: field 'extends' names unknown target 'x86-avx3'")
    cyc = _write(tmp_path, "name: x86\nextends: x86\n", "cyc.yaml")
    assert "cyc.yaml:2: field 'extends' forms a cycle" in _error(cyc)


def test_duplicate_field(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\nname: c\n")
    assert _error(path) == f"{path}:3: field 'name' is given twice"


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: [x86\n")
    with pytest.raises(SpecError, match=r"board.yaml:\d+: not valid YAML"):
        read_spec_file(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\nbackend: x86\n")
    with pytest.raises(SpecError):
        read_spec_file(path)


def test_every_shipped_spec_resolves():
    from tinyc.target import registry

    reg = registry()
    assert not reg.problems
    for name in reg.specs:
        assert resolve_spec_by_name(name).name == name


@pytest.mark.parametrize(("text", "size"), [("48KiB", 49152), ("2MiB", 2 << 20), (64, 64),
                                            ("1.5kB", 1500)])
def test_parse_size(text, size):
    assert parse_size(text) == size
