/* The file-I/O harness tinyc links around a model to run it on an emulator.

   The runner program reads the model's inputs from one file, calls tinyc_run
   with the weights linked in and a static arena, and writes the outputs to
   another file. A platform file provides main (or the reset handler) and the
   two file functions: stdio on Linux, semihosting on bare metal.

   File layout, both ways: the tensors in order, each padded with zeros to a
   multiple of TINYC_IO_ALIGN bytes, so every tensor starts aligned. */

#ifndef TINYC_HARNESS_H
#define TINYC_HARNESS_H

#include <stddef.h>

#define TINYC_IO_ALIGN 64

/* Status codes the runner exits with; tinyc's Python side explains them. */
#define TINYC_EXIT_OK 0
#define TINYC_EXIT_USAGE 64   /* wrong command line */
#define TINYC_EXIT_IO 65      /* an input or output file could not be read or written */
#define TINYC_EXIT_MODEL 66   /* tinyc_run returned non-zero */
#define TINYC_EXIT_FAULT 67   /* the CPU faulted (bare metal fault handler) */
#define TINYC_EXIT_GUARD 68   /* symbolic sizes break a guard (tinyc_harness_sym.c) */

/* Read exactly `size` bytes of `path` into `buf`; 0 on success. */
int tinyc_read_file(const char *path, void *buf, size_t size);
/* Write `size` bytes of `buf` to `path` (created or truncated); 0 on success. */
int tinyc_write_file(const char *path, const void *buf, size_t size);

/* Run the model once from `in_path` to `out_path`; returns a TINYC_EXIT_* code. */
int tinyc_harness_run(const char *in_path, const char *out_path);

#endif
