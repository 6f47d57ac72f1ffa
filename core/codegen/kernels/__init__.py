"""LLVM IR kernels, by family:

- gemm/: the float GEMM driver, micro-kernels and packing, the direct and
  depthwise convs, and the weight-only int4/int8 GEMM (MatMulNBits);
- int8/: the integer GEMM and the 8-bit ops around it ((de)quantize, requantize);
- ops/: kernels of single ops (elementwise, reductions, indexing, norms, pools,
  attention, RNNs, data-dependent sizes);
- support/: the IR helpers they share (vector loops, dtypes, math functions).
"""
