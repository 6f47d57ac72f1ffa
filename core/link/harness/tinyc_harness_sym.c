/* The runner of a model compiled with symbolic dims, for Linux targets (under
   qemu-user): buffers are sized per run, from the sizes the model's own
   tinyc_sizes computes, so it allocates (the static harness does not).

   Inputs file: the run's dims (int64 each, one per symbol, padded to
   TINYC_IO_ALIGN), then the tensors, each padded. Outputs file: every value
   tinyc_sizes wrote (arena bytes, then each output's and input's dims; int64,
   padded), then the output tensors, each padded. A guard that does not hold
   exits with TINYC_EXIT_GUARD after printing "tinyc-guard K" (1-based). */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyc_harness.h"

#include "model.h"

#define PADDED(n) (((n) + TINYC_IO_ALIGN - 1) / TINYC_IO_ALIGN * TINYC_IO_ALIGN)

static const int input_ranks[TINYC_NUM_INPUTS + 1] = TINYC_INPUT_RANKS;
static const int output_ranks[TINYC_NUM_OUTPUTS + 1] = TINYC_OUTPUT_RANKS;
static const int input_items[TINYC_NUM_INPUTS + 1] = TINYC_INPUT_ITEMSIZES;
static const int output_items[TINYC_NUM_OUTPUTS + 1] = TINYC_OUTPUT_ITEMSIZES;

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = n > 0 ? aligned_alloc(TINYC_IO_ALIGN, PADDED((size_t)n)) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* Bytes of each of `n` tensors whose dims follow each other in `dims`. */
static size_t tensor_bytes(const int64_t **dims, int rank, int item) {
    size_t bytes = (size_t)item;
    for (int d = 0; d < rank; d++)
        bytes *= (size_t)(*dims)[d];
    *dims += rank;
    return bytes;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS_FILE OUTPUTS_FILE\n", argv[0]);
        return TINYC_EXIT_USAGE;
    }
    size_t in_size = 0;
    unsigned char *in_file = read_all(argv[1], &in_size);
    size_t header = PADDED(8 * (TINYC_NUM_SYMBOLS + 0));
    if (!in_file || in_size < header)
        return TINYC_EXIT_IO;
    const int64_t *dims = (const int64_t *)in_file;
    int failed = tinyc_guards(dims);
    if (failed) {
        fprintf(stderr, "tinyc-guard %d\n", failed);
        return TINYC_EXIT_GUARD;
    }
    int64_t sizes[TINYC_NUM_SIZES + 1];
    tinyc_sizes(dims, sizes);
    void *inputs[TINYC_NUM_INPUTS + 1], *outputs[TINYC_NUM_OUTPUTS + 1];
    const int64_t *in_dims = sizes + 1, *out_dims = sizes + 1;
    for (int j = 0; j < TINYC_NUM_OUTPUTS; j++)
        in_dims += output_ranks[j];
    size_t at = header;
    for (int i = 0; i < TINYC_NUM_INPUTS; i++) {
        size_t bytes = tensor_bytes(&in_dims, input_ranks[i], input_items[i]);
        if (at + bytes > in_size)
            return TINYC_EXIT_IO;
        inputs[i] = in_file + at;
        at += PADDED(bytes);
    }
    size_t out_header = PADDED(8 * TINYC_NUM_SIZES), out_size = out_header;
    size_t out_bytes[TINYC_NUM_OUTPUTS + 1];
    for (int j = 0; j < TINYC_NUM_OUTPUTS; j++) {
        out_bytes[j] = tensor_bytes(&out_dims, output_ranks[j], output_items[j]);
        out_size += PADDED(out_bytes[j]);
    }
    unsigned char *out_file = aligned_alloc(TINYC_IO_ALIGN, PADDED(out_size));
    void *arena = aligned_alloc(TINYC_ALIGN, PADDED((size_t)sizes[0] + 1));
    if (!out_file || !arena)
        return TINYC_EXIT_IO;
    memset(out_file, 0, out_size);
    memcpy(out_file, sizes, 8 * TINYC_NUM_SIZES);
    at = out_header;
    for (int j = 0; j < TINYC_NUM_OUTPUTS; j++) {
        outputs[j] = out_file + at;
        at += PADDED(out_bytes[j]);
    }
    if (tinyc_run(inputs, outputs, tinyc_weights, arena, dims) != 0)
        return TINYC_EXIT_MODEL;
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(out_file, 1, out_size, f) != out_size || fclose(f) != 0)
        return TINYC_EXIT_IO;
    return TINYC_EXIT_OK;
}
