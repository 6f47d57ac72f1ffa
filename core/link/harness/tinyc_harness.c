/* The platform-independent half of the runner: buffers, one call of tinyc_run.
   Everything is static (no allocation), so the same code runs on bare metal. */

#include "tinyc_harness.h"

#include "model.h"

#define PADDED(n) (((n) + TINYC_IO_ALIGN - 1) / TINYC_IO_ALIGN * TINYC_IO_ALIGN)

/* Sizes of the two files; tinyc passes them when it compiles this file. */
#ifndef TINYC_IN_FILE_BYTES
#error "compile with -DTINYC_IN_FILE_BYTES=<padded size of all inputs>"
#endif
#ifndef TINYC_OUT_FILE_BYTES
#error "compile with -DTINYC_OUT_FILE_BYTES=<padded size of all outputs>"
#endif

/* +1: a model without inputs (or outputs, or arena) still gets a valid buffer. */
static unsigned char arena[TINYC_ARENA_BYTES + 1] __attribute__((aligned(TINYC_ALIGN)));
static unsigned char in_file[TINYC_IN_FILE_BYTES + 1] __attribute__((aligned(TINYC_IO_ALIGN)));
static unsigned char out_file[TINYC_OUT_FILE_BYTES + 1] __attribute__((aligned(TINYC_IO_ALIGN)));

static const size_t input_bytes[TINYC_NUM_INPUTS + 1] = TINYC_INPUT_BYTES;
static const size_t output_bytes[TINYC_NUM_OUTPUTS + 1] = TINYC_OUTPUT_BYTES;

/* Point ptrs[i] at consecutive padded slots of `file`. */
static void slice(unsigned char *file, const size_t *sizes, int n, void **ptrs) {
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        ptrs[i] = file + offset;
        offset += PADDED(sizes[i]);
    }
}

int tinyc_harness_run(const char *in_path, const char *out_path) {
    void *inputs[TINYC_NUM_INPUTS + 1];
    void *outputs[TINYC_NUM_OUTPUTS + 1];
    if (tinyc_read_file(in_path, in_file, TINYC_IN_FILE_BYTES) != 0)
        return TINYC_EXIT_IO;
    slice(in_file, input_bytes, TINYC_NUM_INPUTS, inputs);
    slice(out_file, output_bytes, TINYC_NUM_OUTPUTS, outputs);
    if (tinyc_run(inputs, outputs, tinyc_weights, arena) != 0)
        return TINYC_EXIT_MODEL;
    if (tinyc_write_file(out_path, out_file, TINYC_OUT_FILE_BYTES) != 0)
        return TINYC_EXIT_IO;
    return TINYC_EXIT_OK;
}
