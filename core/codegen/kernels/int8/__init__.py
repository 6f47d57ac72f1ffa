"""The integer GEMM family and the 8-bit ops around it: packing, micro-kernels, requantizing
epilogues, (de)quantize."""
