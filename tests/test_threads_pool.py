"""The runtime's thread pool (core/runtime/c) on its own: every index computed
exactly once, worker indices unique and below the chunk count, nested calls
serial, any thread count; jobs whose caller runs its own chunks; and the serial
implementation of the same symbols."""

from __future__ import annotations

import subprocess

import pytest

from tinyc.codegen.build import find_linker, pool_source

HARNESS = r"""
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
typedef void (*body)(void *, int64_t, int64_t, int64_t);
void tinyc_parallel_for(body fn, void *ctx, int64_t n, int64_t max_workers);
void tinyc_set_num_threads(int64_t n);
int64_t tinyc_get_num_threads(void);

enum { N = 1000, MAXW = 4 };
static int64_t out[N];
static _Atomic int busy_worker[64]; /* a worker index in use by two threads = a bug */
static int bad;

static void inner(void *ctx, int64_t b, int64_t e, int64_t w) {
    (void)ctx; (void)w;
    for (int64_t i = b; i < e; i++) out[i] += 1000;
}

static void outer(void *ctx, int64_t b, int64_t e, int64_t w) {
    int64_t k = *(int64_t *)ctx;
    if (w < 0 || w >= MAXW || atomic_fetch_add(&busy_worker[w], 1) != 0) bad = 1;
    for (int64_t i = b; i < e; i++) out[i] += i * k;
    if (k == 3 && b == 0) tinyc_parallel_for(inner, NULL, e, MAXW); /* nested: serial */
    atomic_fetch_sub(&busy_worker[w], 1);
}

int main(int argc, char **argv) {
    int64_t threads = atoi(argv[1]);
    tinyc_set_num_threads(threads);
    static int64_t want[N];
    for (int it = 1; it <= 3000; it++) {
        int64_t k = it % 7, n = 1 + it % N, maxw = 1 + it % MAXW;
        tinyc_parallel_for(outer, &k, n, maxw);
        int64_t chunks = threads < maxw ? threads : maxw;
        chunks = chunks < n ? chunks : n;
        for (int64_t i = 0; i < n; i++) want[i] += i * k + (k == 3 && i < n / chunks ? 1000 : 0);
    }
    int mismatches = 0;
    for (int i = 0; i < N; i++) mismatches += out[i] != want[i];
    printf("%ld %d %d\n", (long)tinyc_get_num_threads(), bad, mismatches);
    return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    (d / "h.c").write_text(HARNESS)
    exe = d / "h"
    subprocess.run([find_linker(), "-O2", "-pthread", "-std=c11", "-o", str(exe), str(d / "h.c"),
                    str(pool_source("pthreads"))], check=True)
    return exe


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_pool_runs_every_index_once_with_unique_workers(harness, threads):
    r = subprocess.run([str(harness), str(threads)], capture_output=True, text=True, timeout=120)
    lines = r.stdout.split()
    assert r.returncode == 0, r.stderr
    assert lines[0] == str(threads)
    assert lines[1] == "0", "a worker index was used by two threads at once, or out of range"
    assert lines[2] == "0", "some index was computed twice or never"


def test_serial_pool_is_freestanding(tmp_path):
    """The serial pool links with -nostdlib: targets without libc can use it."""
    src = pool_source("serial")
    obj = tmp_path / "s.o"
    subprocess.run([find_linker(), "-c", "-O2", "-ffreestanding", "-fPIC", "-o", str(obj),
                    str(src)], check=True)
    so = tmp_path / "s.so"
    subprocess.run([find_linker(), "-shared", "-nostdlib", "-o", str(so), str(obj)], check=True)
    nm = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True)
    for sym in ("tinyc_parallel_for", "tinyc_set_num_threads", "tinyc_get_num_threads",
                "tinyc_parallel_post", "tinyc_parallel_claim", "tinyc_parallel_done",
                "tinyc_parallel_join", "tinyc_pool_stop"):
        assert sym in nm.stdout


CALLER_RUN = r"""
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
typedef void (*body)(void *, int64_t, int64_t, int64_t);
int64_t tinyc_parallel_post(body fn, void *ctx, int64_t n, int64_t max_workers, int64_t per);
int64_t tinyc_parallel_claim(void);
void tinyc_parallel_done(void);
void tinyc_parallel_join(void);
void tinyc_parallel_for(body fn, void *ctx, int64_t n, int64_t max_workers);
void tinyc_set_num_threads(int64_t n);

enum { N = 700, MAXW = 4 };
static int64_t out[N];
static _Atomic int busy_worker[64];
static int bad;
static long by_caller, by_workers;

static void run(int64_t b, int64_t e, int64_t w, int64_t k) {
    if (w < 0 || w >= MAXW || atomic_fetch_add(&busy_worker[w], 1) != 0) bad = 1;
    for (int64_t i = b; i < e; i++) out[i] += i * k;
    atomic_fetch_sub(&busy_worker[w], 1);
}

static void task(void *ctx, int64_t b, int64_t e, int64_t w) {
    if (w == 0) bad = 1; /* the caller never runs the task's chunks of its own job */
    run(b, e, w, *(int64_t *)ctx);
    by_workers += e - b;
}

int main(int argc, char **argv) {
    int64_t threads = atoi(argv[1]);
    tinyc_set_num_threads(threads);
    static int64_t want[N];
    for (int it = 1; it <= 2000; it++) {
        int64_t k = 1 + it % 5, n = 1 + it % N, maxw = 1 + it % MAXW, per = it % 6;
        int64_t chunks = tinyc_parallel_post(task, &k, n, maxw, per);
        if (chunks == 0) {
            if (threads > 1 && maxw > 1 && n > 1) bad = 1; /* the pool was free */
            run(0, n, 0, k);
        } else {
            int64_t c;
            while ((c = tinyc_parallel_claim()) >= 0) {
                run(n * c / chunks, n * (c + 1) / chunks, 0, k);
                by_caller += n * (c + 1) / chunks - n * c / chunks;
                tinyc_parallel_done();
            }
            tinyc_parallel_join();
        }
        for (int64_t i = 0; i < n; i++) want[i] += i * k;
    }
    int mismatches = 0;
    for (int i = 0; i < N; i++) mismatches += out[i] != want[i];
    printf("%d %d %ld\n", bad, mismatches, by_caller > 0 ? 1L : 0L);
    return 0;
}
"""


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_caller_runs_its_own_chunks(tmp_path, threads):
    """tinyc_parallel_post / claim / done / join: every index once, the caller's
    chunks on worker index 0 with its own code, the workers' through the task."""
    (tmp_path / "c.c").write_text(CALLER_RUN)
    exe = tmp_path / "c"
    subprocess.run([find_linker(), "-O2", "-pthread", "-std=c11", "-o", str(exe),
                    str(tmp_path / "c.c"), str(pool_source("pthreads"))], check=True)
    r = subprocess.run([str(exe), str(threads)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    bad, mismatches, caller_ran = r.stdout.split()
    assert bad == "0", "a worker index used twice at once, or the pool refused a free job"
    assert mismatches == "0", "some index was computed twice or never"
    assert caller_ran == ("1" if threads > 1 else "0")  # one thread: never posted


STOP = r"""
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
typedef void (*body)(void *, int64_t, int64_t, int64_t);
void tinyc_parallel_for(body fn, void *ctx, int64_t n, int64_t max_workers);
void tinyc_set_num_threads(int64_t n);
void tinyc_pool_stop(void);

static int64_t out[64];
static void add(void *ctx, int64_t b, int64_t e, int64_t w) {
    (void)ctx; (void)w;
    for (int64_t i = b; i < e; i++) out[i] += i;
}
static int threads_now(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}
int main(void) {
    tinyc_set_num_threads(3);
    tinyc_parallel_for(add, NULL, 64, 3);
    int running = threads_now();
    tinyc_pool_stop();
    int stopped = threads_now();
    tinyc_parallel_for(add, NULL, 64, 3);  /* new workers */
    int again = threads_now();
    int bad = 0;
    for (int i = 0; i < 64; i++) bad += out[i] != 2 * i;
    printf("%d %d %d %d\n", running, stopped, again, bad);
    return 0;
}
"""


def test_pool_stop_ends_the_workers_and_a_later_job_starts_new_ones(tmp_path):
    """tinyc_pool_stop (called when the host drops a model) joins the workers; the
    next job creates them again and computes every index."""
    (tmp_path / "s.c").write_text(STOP)
    exe = tmp_path / "s"
    subprocess.run([find_linker(), "-O2", "-pthread", "-std=c11", "-o", str(exe),
                    str(tmp_path / "s.c"), str(pool_source("pthreads"))], check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "1", "3", "0"]
