/* The runner's main on an OS with files (Linux user mode, under qemu-user). */

#include <stdio.h>

#include "tinyc_harness.h"

int tinyc_read_file(const char *path, void *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    return got == size ? 0 : -1;
}

int tinyc_write_file(const char *path, const void *buf, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(buf, 1, size, f);
    return fclose(f) == 0 && put == size ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS_FILE OUTPUTS_FILE\n", argv[0]);
        return TINYC_EXIT_USAGE;
    }
    return tinyc_harness_run(argv[1], argv[2]);
}
