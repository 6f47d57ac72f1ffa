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
    # narrow types, one element per byte in memory (as numpy/ml_dtypes holds them)
    float8e4m3fn = "f8e4m3fn"
    float8e4m3fnuz = "f8e4m3fnuz"
    float8e5m2 = "f8e5m2"
    float8e5m2fnuz = "f8e5m2fnuz"
    float8e8m0 = "f8e8m0"
    float4e2m1 = "f4e2m1"
    int4 = "i4"
    uint4 = "u4"
    int2 = "i2"
    uint2 = "u2"

    @property
    def short(self) -> str:
        return self.value

    @property
    def numpy(self) -> np.dtype:
        if self is DType.bfloat16:
            import ml_dtypes  # shipped with onnx

            return np.dtype(ml_dtypes.bfloat16)
        if self in _ML_DTYPES:
            import ml_dtypes

            return np.dtype(getattr(ml_dtypes, _ML_DTYPES[self]))
        return np.dtype(_NUMPY[self])

    @property
    def itemsize(self) -> int:
        if self in _ML_DTYPES:
            return 1
        return 2 if self is DType.bfloat16 else np.dtype(_NUMPY[self]).itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.float32, DType.float16, DType.bfloat16, DType.float64) or (
            self in _ML_DTYPES and self.value.startswith("f"))

    @staticmethod
    def from_numpy(dt: np.dtype) -> DType:
        dt = np.dtype(dt)
        if dt.name == "bfloat16":
            return DType.bfloat16
        for k, v in _ML_DTYPES.items():
            if dt.name == v:
                return k
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

# types numpy knows only through ml_dtypes, by attribute name
_ML_DTYPES = {
    DType.float8e4m3fn: "float8_e4m3fn", DType.float8e4m3fnuz: "float8_e4m3fnuz",
    DType.float8e5m2: "float8_e5m2", DType.float8e5m2fnuz: "float8_e5m2fnuz",
    DType.float8e8m0: "float8_e8m0fnu", DType.float4e2m1: "float4_e2m1fn",
    DType.int4: "int4", DType.uint4: "uint4", DType.int2: "int2", DType.uint2: "uint2",
}

_FROM_ONNX = {
    TensorProto.FLOAT: DType.float32, TensorProto.FLOAT16: DType.float16,
    TensorProto.BFLOAT16: DType.bfloat16, TensorProto.DOUBLE: DType.float64,
    TensorProto.INT8: DType.int8, TensorProto.INT16: DType.int16,
    TensorProto.INT32: DType.int32, TensorProto.INT64: DType.int64,
    TensorProto.UINT8: DType.uint8, TensorProto.UINT16: DType.uint16,
    TensorProto.UINT32: DType.uint32, TensorProto.UINT64: DType.uint64,
    TensorProto.BOOL: DType.bool,
    TensorProto.FLOAT8E4M3FN: DType.float8e4m3fn, TensorProto.FLOAT8E4M3FNUZ: DType.float8e4m3fnuz,
    TensorProto.FLOAT8E5M2: DType.float8e5m2, TensorProto.FLOAT8E5M2FNUZ: DType.float8e5m2fnuz,
    TensorProto.FLOAT8E8M0: DType.float8e8m0, TensorProto.FLOAT4E2M1: DType.float4e2m1,
    TensorProto.INT4: DType.int4, TensorProto.UINT4: DType.uint4, TensorProto.INT2: DType.int2,
    TensorProto.UINT2: DType.uint2,
}
