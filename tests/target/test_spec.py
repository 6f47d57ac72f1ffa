from __future__ import annotations

import pytest

from tinyc.errors import SpecError
from tinyc.target import resolve_spec_by_name
from tinyc.target.spec import read_spec_file


def _write(tmp_path, text: str) -> str:
    p = tmp_path / "board.yaml"
    p.write_text(text)
    return str(p)


def test_user_spec_extends_a_shipped_one(tmp_path):
    path = _write(tmp_path, "name: myboard\nextends: x86-avx2\nvector_bits: 128\n")
    spec = resolve_spec_by_name(path)
    assert spec.backend == "x86" and spec.vector_bits == 128 and spec.cpu == "haswell"


def test_misspelled_key_names_file_line_and_field(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\nvectr_bits: 256\n")
    with pytest.raises(SpecError, match=r"board.yaml:3: unknown field 'vectr_bits'"):
        read_spec_file(path)


def test_wrong_type_says_what_was_expected(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: x86\nvector_bits: [256]\n")
    with pytest.raises(SpecError, match=r"board.yaml:3: field 'vector_bits' is list.*expected"):
        read_spec_file(path)


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = _write(tmp_path, "name: b\nbackend: [x86\n")
    with pytest.raises(SpecError, match=r"board.yaml:\d+: not valid YAML"):
        read_spec_file(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\nbackend: x86\n")
    with pytest.raises(SpecError):
        read_spec_file(path)
