"""The accelerator kit: a GEMM-array accelerator described by its YAML spec.

A plugin registers `GemmArrayBackend(name)` (the region compiler), the
`gemm_array_op_support(name)` the partitioner places by, and
`gemm_array_runtime_device(name)` (the simulator that runs the regions); its
spec gives the array size, buffer sizes, clock, DMA, ops, post-ops, dtypes and
limits, and an intrinsic set declares the array's GEMM command by its
semantics. docs/accelerator-kit.md walks through it.

How a region becomes commands:

- layers.py, cpu_lowering.py, int_gemm.py: a node -> a `GemmJob` (jobs.py),
  built from the IntGemm tinyc's CPU lowering describes, so both agree bit for bit;
- tiling.py: a job -> commands (commands.py) that fit the buffers;
- program.py: a region's jobs and commands, saved and loaded;
- simulator.py, device.py: running the commands, with a cycle count.

Nothing is imported here, so the runtime device loads without the compiler.
"""
