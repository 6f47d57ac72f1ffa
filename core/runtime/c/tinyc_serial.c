/* The thread pool's interface for targets without threads (bare metal, wasm):
   every parallel loop runs on the calling thread as one chunk. Same symbols as
   tinyc_threads.c, so generated code and hosts need not know which was linked. */

#include <stdint.h>

typedef void (*tinyc_body)(void *ctx, int64_t begin, int64_t end, int64_t worker);

void tinyc_parallel_for(tinyc_body fn, void *ctx, int64_t n, int64_t max_workers) {
    (void)max_workers;
    if (n > 0) fn(ctx, 0, n, 0);
}

int64_t tinyc_get_num_threads(void) { return 1; }

void tinyc_set_num_threads(int64_t n) { (void)n; }
