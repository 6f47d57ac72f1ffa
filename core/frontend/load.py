"""Reading ONNX files safely: clear errors for malformed files, and external
weight files that must stay inside the model's folder."""

from __future__ import annotations

import os

import onnx
from google.protobuf.message import DecodeError

from ..errors import ModelError


def load_model(model: str | os.PathLike | bytes | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        return _parse(model, "<bytes>")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such model file")
    with open(path, "rb") as f:
        proto = _parse(f.read(), path)
    _load_external_data(proto, os.path.dirname(os.path.abspath(path)), path)
    return proto


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelError(f"{where}: not a valid ONNX model (protobuf parse failed: {e})") from None
    if not proto.HasField("graph"):
        raise ModelError(f"{where}: not a valid ONNX model (no graph; truncated or not ONNX)")
    return proto


def _load_external_data(proto: onnx.ModelProto, base: str, where: str) -> None:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    tensors = [t for t in _get_all_tensors(proto) if uses_external_data(t)]
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        _check_location(info.get("location", ""), base, t.name, where)
    if tensors:
        try:
            onnx.load_external_data_for_model(proto, base)
        except (OSError, ValueError) as e:
            raise ModelError(f"{where}: cannot read external data: {e}") from None


def _check_location(location: str, base: str, tensor: str, where: str) -> None:
    """External data must live under the model's folder: no absolute paths, no
    '..', no symlink leading outside (a model file must not read arbitrary files)."""
    bad = (not location or os.path.isabs(location) or location.startswith(("/", "\\"))
           or ".." in location.replace("\\", "/").split("/"))
    real_base = os.path.realpath(base)
    target = os.path.realpath(os.path.join(base, location)) if location else ""
    if bad or os.path.commonpath([real_base, target]) != real_base:
        raise ModelError(
            f"{where}: tensor '{tensor}' has external data location '{location}' outside "
            f"the model's folder {base}; refusing to read it"
        )
