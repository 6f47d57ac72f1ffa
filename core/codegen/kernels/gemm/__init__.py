"""The float GEMM family: blocking driver, micro-kernels, packing (plain and im2col), direct
and depthwise convs, and the int4/int8 weight-only GEMM (MatMulNBits)."""
