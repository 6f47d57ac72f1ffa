/* The thread pool's interface for targets without threads (bare metal, wasm):
   every parallel loop runs on the calling thread as one chunk. Same symbols as
   tinyc_threads.c, so generated code and hosts need not know which was linked. */

#include <stdint.h>

typedef void (*tinyc_body)(void *ctx, int64_t begin, int64_t end, int64_t worker);

void tinyc_parallel_for(tinyc_body fn, void *ctx, int64_t n, int64_t max_workers) {
    (void)max_workers;
    if (n > 0) fn(ctx, 0, n, 0);
}

/* A caller-run job (see tinyc_threads.c) is never posted: the caller runs it alone. */
int64_t tinyc_parallel_post(tinyc_body fn, void *ctx, int64_t n, int64_t max_workers,
                            int64_t per_worker) {
    (void)fn, (void)ctx, (void)n, (void)max_workers, (void)per_worker;
    return 0;
}

int64_t tinyc_parallel_claim(void) { return -1; }

void tinyc_parallel_done(void) {}

void tinyc_parallel_join(void) {}

int64_t tinyc_get_num_threads(void) { return 1; }

void tinyc_set_num_threads(int64_t n) { (void)n; }

void tinyc_pool_stop(void) {}
