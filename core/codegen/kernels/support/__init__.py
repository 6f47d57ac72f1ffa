"""LLVM IR helpers the kernels share: vector loops, dtype conversion, math functions,
minifloats, typed ops."""
