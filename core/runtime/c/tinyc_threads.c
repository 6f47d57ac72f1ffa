/* tinyc's thread pool, linked into every host model library.

   Generated kernels split their outer loop with

       void tinyc_parallel_for(tinyc_body fn, void *ctx, int64_t n, int64_t max_workers);

   which cuts [0, n) into W = min(threads, max_workers, n) contiguous chunks of
   near-equal size (static chunking: the cut never depends on timing) and runs
   fn(ctx, begin, end, worker) once per chunk. `worker` is the index of the
   thread running it, 0 (the caller) .. W-1, and no two threads share an index,
   so kernels give each worker its own scratch slice by that index.

   - Workers are created on first use and then live as long as the process;
     tinyc_set_num_threads may grow the pool, never shrinks it. No allocation
     per call: the job and the per-worker slots are static.
   - Dispatch: the caller writes the job, then stores its id into the slots
     (one cache line each) of the W-1 workers it wakes; other workers sleep on.
   - Chunks are claimed, not assigned: every participating thread, the caller
     included, takes the next unclaimed chunk (one atomic compare-and-swap on
     `claim`) until none is left. On a busy machine a worker that is not
     scheduled in time simply claims nothing, and the caller does its chunk
     instead of waiting a whole time slice for it.
   - Join: the thread finishing the job's last chunk publishes the job id in
     `done`, which the caller waits for.
   - Waiting spins for a short while (kernels of one model run back to back,
     so workers are usually still awake for the next one), then sleeps on a
     futex: an idle model costs no CPU.
   - Memory order: the job is written before the release store of `claim` and
     read only after the acquire compare-and-swap that claims a chunk of it (a
     job cannot end, so it cannot be overwritten, while one of its chunks is
     unfinished). A chunk's stores happen before its release increment of
     `finished`, which the caller's acquire load of `done` follows: all outputs
     are visible to the caller when tinyc_parallel_for returns. A chunk writes
     only its own output range and its worker's scratch slice: no data races.
   - A job may also be run by its caller with code of its own
     (tinyc_parallel_post / claim / done / join): a copy of the body compiled
     for the call site's constants, faster than the task the workers run.
   - A call made from inside a chunk (a nested parallel loop) or while another
     host thread owns the pool (`busy`) runs serially on the calling thread,
     under that thread's own worker index. Pool growth happens under `busy`.
   - fork(): the child has no workers; they are recreated on first use.
   - Each library has its own pool, and its workers sleep in its code: a host
     must not unload a library whose pool has started (ctypes never does).
     tinyc_pool_stop ends the workers (the host calls it when it drops the
     model: a process that loads models one after another keeps no idle
     threads); a later job creates them again. */

#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define TINYC_MAX_THREADS 64
/* How long a worker spins for its next job before it sleeps: longer than the
   serial stretches between two parallel kernels of a model and the host's
   overhead between two runs (a worker woken from sleep arrives ~50 us late),
   short enough to give an idle model's core back soon. Measured in time, not
   in pause instructions, whose cost varies 10x between CPUs and hypervisors. */
#define WORKER_SPIN_NS 300000
#define JOIN_SPIN_NS 50000 /* the caller, before it yields its core while joining */
#define JOIN_YIELDS 2000   /* ~4 ms of sched_yield when nothing else runs */

typedef void (*tinyc_body)(void *ctx, int64_t begin, int64_t end, int64_t worker);

/* A 32-bit word threads wait on (a futex word on Linux) plus a count of sleepers,
   so that publishing a value costs a system call only when someone sleeps. */
typedef struct {
    _Atomic uint32_t value;
    _Atomic uint32_t sleepers;
} waitword;

typedef struct {
    _Alignas(64) waitword go; /* id of the last job handed to this worker */
    uint32_t first_seen;      /* go's value when the thread was created */
    pthread_t thread;
    int index;
} worker_slot;

/* The current job. fn, ctx and n are written by the owner before `claim` is
   published and read only by a thread holding an unfinished chunk: the job
   cannot end, so they cannot change, while it runs the chunk. */
static struct {
    _Alignas(64) tinyc_body fn;
    void *ctx;
    int64_t n;
    uint32_t job_id;
    _Alignas(64) _Atomic uint64_t claim;  /* job id << 32 | chunks << 16 | next chunk */
    _Alignas(64) _Atomic int64_t finished; /* chunks of the job finished */
    _Alignas(64) waitword done;            /* id of the last job fully finished */
    _Alignas(64) atomic_flag busy;         /* held by the thread running a job */
    _Atomic int threads; /* wanted, 1..TINYC_MAX_THREADS; 0: not chosen yet */
    int created;         /* slots 1..created-1 have a thread; changed only under busy */
    _Atomic int stopping; /* set by tinyc_pool_stop: workers return instead of working */
    worker_slot slots[TINYC_MAX_THREADS];
} pool = {.busy = ATOMIC_FLAG_INIT, .created = 1};

static _Thread_local int64_t my_worker = -1; /* >= 0 while running a chunk */

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void sleep_while_equal(waitword *w, uint32_t old) {
#if defined(__linux__)
    syscall(SYS_futex, &w->value, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
#else
    (void)w, (void)old;
    sched_yield();
#endif
}

static void wake_all(waitword *w) {
#if defined(__linux__)
    syscall(SYS_futex, &w->value, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)w;
#endif
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Spin until w->value != old or for about spin_ns; returns the value last read. */
static uint32_t spin_while_equal(waitword *w, uint32_t old, uint64_t spin_ns) {
    uint64_t deadline = now_ns() + spin_ns;
    for (int i = 1;; i++) {
        uint32_t v = atomic_load_explicit(&w->value, memory_order_acquire);
        if (v != old || ((i & 63) == 0 && now_ns() > deadline)) return v;
        cpu_relax();
    }
}

/* Wait until w->value != old (spin, then sleep); returns the new value. */
static uint32_t wait_for_change(waitword *w, uint32_t old, uint64_t spin_ns) {
    uint32_t v = spin_while_equal(w, old, spin_ns);
    if (v != old) return v;
    /* seq_cst increment, then re-check: either we see the new value, or the
       publisher sees us sleeping and wakes us (Dekker-style). */
    atomic_fetch_add(&w->sleepers, 1);
    while ((v = atomic_load(&w->value)) == old) sleep_while_equal(w, old);
    atomic_fetch_sub(&w->sleepers, 1);
    return v;
}

/* Wait until w->value == want: the join. The caller's own chunks are done and
   a worker is finishing its: spin, then yield the core (the caller stays
   runnable: a sleeping caller would wait to be scheduled again, which on a
   loaded machine costs more than the wait), and sleep only after JOIN_YIELDS. */
static void wait_for_value(waitword *w, uint32_t want) {
    uint32_t v = atomic_load_explicit(&w->value, memory_order_acquire);
    if (v != want) v = spin_while_equal(w, v, JOIN_SPIN_NS);
    for (int i = 0; v != want && i < JOIN_YIELDS; i++) {
        sched_yield();
        v = atomic_load_explicit(&w->value, memory_order_acquire);
    }
    while (v != want) v = wait_for_change(w, v, 0);
}

static void publish(waitword *w, uint32_t value) {
    atomic_store(&w->value, value);
    if (atomic_load(&w->sleepers)) wake_all(w);
}

/* The index of the next unclaimed chunk of job `id` (and the job's chunk
   count), or -1 when none is left or a later job is running. */
static int64_t claim_chunk(uint32_t id, int64_t *chunks_out) {
    for (;;) {
        uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
        uint64_t chunks = (c >> 16) & 0xffff, next = c & 0xffff;
        if ((uint32_t)(c >> 32) != id || next >= chunks) return -1; /* all taken, or a later job */
        if (atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
            *chunks_out = (int64_t)chunks;
            return (int64_t)next;
        }
    }
}

/* A chunk of job `id` is done: the last one publishes the job finished. */
static void finish_chunk(uint32_t id, int64_t chunks) {
    if (atomic_fetch_add_explicit(&pool.finished, 1, memory_order_acq_rel) + 1 == chunks)
        publish(&pool.done, id);
}

/* Claim and run chunks of job `id` until none is left; `worker` is the calling
   thread's index (its scratch slice). */
static void work_on(uint32_t id, int64_t worker) {
    int64_t chunks, k;
    while ((k = claim_chunk(id, &chunks)) >= 0) {
        int64_t n = pool.n, begin = n * k / chunks, end = n * (k + 1) / chunks;
        my_worker = worker;
        if (begin < end) pool.fn(pool.ctx, begin, end, worker);
        my_worker = -1;
        finish_chunk(id, chunks);
    }
}

static void *worker_main(void *arg) {
    worker_slot *self = arg;
    uint32_t seen = self->first_seen; /* not go's value now: a job may be posted already */
    for (;;) {
        seen = wait_for_change(&self->go, seen, WORKER_SPIN_NS);
        if (atomic_load(&pool.stopping)) return NULL;
        work_on(seen, self->index);
    }
}

static int default_threads(void) {
    const char *env = getenv("TINYC_NUM_THREADS");
    long n = env && *env ? strtol(env, NULL, 10) : 0;
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > TINYC_MAX_THREADS ? TINYC_MAX_THREADS : (int)n;
}

static void forget_workers_in_child(void) {
    pool.created = 1;
    atomic_flag_clear(&pool.busy);
}

/* Create workers up to `count` threads in all (the caller is one of them).
   Called with the pool held (busy). */
static void grow_pool(int count) {
    static int atfork_registered;
    if (!atfork_registered) atfork_registered = !pthread_atfork(NULL, NULL, forget_workers_in_child);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* workers inherit it: signals go to the host's threads */
    while (pool.created < count) {
        worker_slot *s = &pool.slots[pool.created];
        s->index = pool.created;
        s->first_seen = pool.job_id;
        atomic_store(&s->go.value, pool.job_id);
        if (pthread_create(&s->thread, NULL, worker_main, s) != 0) break;
        pool.created++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* End the workers (they are idle: no job can run while the pool is held) and
   wait for them; the next job creates new ones. Called by the host when the
   model is dropped, from a thread not running a job of this pool. */
void tinyc_pool_stop(void) {
    while (atomic_flag_test_and_set(&pool.busy)) cpu_relax();
    atomic_store(&pool.stopping, 1);
    for (int w = 1; w < pool.created; w++) publish(&pool.slots[w].go, pool.job_id + 1);
    for (int w = 1; w < pool.created; w++) pthread_join(pool.slots[w].thread, NULL);
    pool.created = 1;
    atomic_store(&pool.stopping, 0);
    atomic_flag_clear(&pool.busy);
}

int64_t tinyc_get_num_threads(void) {
    int n = atomic_load_explicit(&pool.threads, memory_order_relaxed);
    if (!n) atomic_store_explicit(&pool.threads, n = default_threads(), memory_order_relaxed);
    return n;
}

/* n <= 0: back to the default (TINYC_NUM_THREADS, else every online CPU). */
void tinyc_set_num_threads(int64_t n) {
    int v = n <= 0 ? default_threads() : n > TINYC_MAX_THREADS ? TINYC_MAX_THREADS : (int)n;
    atomic_store_explicit(&pool.threads, v, memory_order_relaxed);
}

/* Post a job of `chunks` chunks (at most 0xffff) to W-1 workers; the caller holds the pool. */
static void post_job(tinyc_body fn, void *ctx, int64_t n, int64_t workers, int64_t chunks) {
    if (pool.created < workers) grow_pool((int)workers);
    if (workers > pool.created) workers = pool.created; /* thread creation failed */
    uint32_t id = pool.job_id + 1;
    pool.fn = fn, pool.ctx = ctx, pool.n = n, pool.job_id = id;
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.claim, (uint64_t)id << 32 | (uint64_t)chunks << 16,
                          memory_order_release);
    for (int64_t w = 1; w < workers; w++) publish(&pool.slots[w].go, id);
}

static void join_job(void) {
    wait_for_value(&pool.done, pool.job_id);
    atomic_flag_clear(&pool.busy);
}

/* Workers for a job of n indices, holding the pool; 1 (not holding it) when the
   job runs serially on the caller. */
static int64_t job_workers(int64_t n, int64_t max_workers) {
    int64_t w = tinyc_get_num_threads();
    if (w > max_workers) w = max_workers;
    if (w > n) w = n;
    if (w <= 1 || my_worker >= 0 || atomic_flag_test_and_set(&pool.busy)) return 1;
    return w;
}

void tinyc_parallel_for(tinyc_body fn, void *ctx, int64_t n, int64_t max_workers) {
    if (n <= 0) return;
    int64_t workers = job_workers(n, max_workers);
    if (workers <= 1) {
        fn(ctx, 0, n, my_worker >= 0 ? my_worker : 0);
        return;
    }
    post_job(fn, ctx, n, workers, workers);
    work_on(pool.job_id, 0);
    join_job();
}

/* A job whose caller runs its own chunks with code of its own (a copy of the
   body compiled for the call site's constant arguments, faster than `fn`, which
   the workers run), cut into up to `per_worker` chunks per worker: chunks are
   claimed, so the faster thread takes more of them. On the calling thread:

       chunks = tinyc_parallel_post(fn, ctx, n, max_workers, per_worker);
       if (chunks == 0): run [0, n) some other way (one worker is all it gets,
                         the pool is busy or the call is nested);
       else: while ((k = tinyc_parallel_claim()) >= 0) {
                 run [n*k/chunks, n*(k+1)/chunks) as worker 0; tinyc_parallel_done();
             }
             tinyc_parallel_join();  */
int64_t tinyc_parallel_post(tinyc_body fn, void *ctx, int64_t n, int64_t max_workers,
                            int64_t per_worker) {
    if (n <= 0) return 0;
    int64_t workers = job_workers(n, max_workers);
    if (workers <= 1) return 0;
    int64_t chunks = workers * (per_worker < 1 ? 1 : per_worker);
    chunks = chunks > n ? n : chunks > 0xffff ? 0xffff : chunks;
    post_job(fn, ctx, n, workers, chunks);
    my_worker = 0; /* the caller's chunks: a loop nested in them runs serially */
    return chunks;
}

int64_t tinyc_parallel_claim(void) {
    int64_t chunks;
    return claim_chunk(pool.job_id, &chunks);
}

void tinyc_parallel_done(void) {
    uint64_t c = atomic_load_explicit(&pool.claim, memory_order_relaxed);
    finish_chunk(pool.job_id, (int64_t)((c >> 16) & 0xffff));
}

void tinyc_parallel_join(void) {
    my_worker = -1;
    join_job();
}
