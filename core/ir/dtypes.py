"""Element types of tensors, with their numpy and ONNX counterparts."""

from __future__ import annotations

import enum

import numpy as np
from onnx import TensorProto


class DType(enum.Enum):
    float32 = "f32"
    float16 = "f16"
    bfloat16 = "bf16"
    float64 = "f64"
    int8 = "i8"
    int16 = "i16"
    int32 = "i32"
    int64 = "i64"
    uint8 = "u8"
    uint16 = "u16"
    uint32 = "u32"
    uint64 = "u64"
    bool = "bool"

    @property
    def short(self) -> str:
        return self.value

    @property
    def numpy(self) -> np.dtype:
        if self is DType.bfloat16:
            import ml_dtypes  # shipped with onnx

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(_NUMPY[self])

    @property
    def itemsize(self) -> int:
        return 2 if self is DType.bfloat16 else np.dtype(_NUMPY[self]).itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.float32, DType.float16, DType.bfloat16, DType.float64)

    @staticmethod
    def from_numpy(dt: np.dtype) -> DType:
        dt = np.dtype(dt)
        if dt.name == "bfloat16":
            return DType.bfloat16
        for k, v in _NUMPY.items():
            if np.dtype(v) == dt:
                return k
        raise KeyError(f"no tinyc dtype for numpy {dt}")

    @staticmethod
    def from_onnx(elem_type: int) -> DType:
        return _FROM_ONNX[elem_type]

    @staticmethod
    def from_short(s: str) -> DType:
        return DType(s)


_NUMPY = {
    DType.float32: "float32", DType.float16: "float16", DType.float64: "float64",
    DType.int8: "int8", DType.int16: "int16", DType.int32: "int32", DType.int64: "int64",
    DType.uint8: "uint8", DType.uint16: "uint16", DType.uint32: "uint32",
    DType.uint64: "uint64", DType.bool: "bool", DType.bfloat16: "uint16",
}

_FROM_ONNX = {
    TensorProto.FLOAT: DType.float32, TensorProto.FLOAT16: DType.float16,
    TensorProto.BFLOAT16: DType.bfloat16, TensorProto.DOUBLE: DType.float64,
    TensorProto.INT8: DType.int8, TensorProto.INT16: DType.int16,
    TensorProto.INT32: DType.int32, TensorProto.INT64: DType.int64,
    TensorProto.UINT8: DType.uint8, TensorProto.UINT16: DType.uint16,
    TensorProto.UINT32: DType.uint32, TensorProto.UINT64: DType.uint64,
    TensorProto.BOOL: DType.bool,
}
