"""Kernels of single ONNX ops (elementwise, reductions, indexing, norms, pools, attention,
RNNs...)."""
