/*
 * collector_test.c: the collector thread's contracts: ticks on whole
 * wall-clock seconds, a stopped thread returns promptly, and a cycle in
 * steady state allocates nothing (counted with the sanitizer's malloc hooks,
 * so this part runs in the ASan build the suite uses).
 */
#include "testutil.h"
#include "collect/collect.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
/* From the sanitizer runtime (GCC ships the library but not this header). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
#define HAVE_ALLOC_HOOKS 1
#endif

struct ticks {
    pthread_mutex_t lock;
    int64_t ts[16];
    int64_t late_ms[16];
    int n;
};

static void record(void *ctx, const struct metric_buf *b)
{
    struct ticks *t = ctx;
    pthread_mutex_lock(&t->lock);
    if (t->n < 16) {
        t->ts[t->n] = b->ts_ms;
        t->late_ms[t->n] = util_now_ms() - b->ts_ms;
        t->n++;
    }
    pthread_mutex_unlock(&t->lock);
}

static void test_ticks_on_whole_seconds(void **state)
{
    (void)state;
    struct ticks t = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct collect_opts o = {.sink = record, .sink_ctx = &t};
    struct collect *c = collect_new(&o);
    assert_int_equal(collect_start(c), 0);
    sleep(4);
    int64_t t0 = util_mono_ns();
    collect_stop(c);
    int64_t stop_ms = (util_mono_ns() - t0) / 1000000;
    assert_true(stop_ms < 1000); /* stop does not wait for the next tick */
    collect_free(c);
    assert_true(t.n >= 3);
    for (int i = 0; i < t.n; i++) {
        assert_int_equal(t.ts[i] % 1000, 0);
        if (i)
            assert_int_equal(t.ts[i] - t.ts[i - 1], 1000);
        /* The sink runs after the sources: well within the second. */
        assert_true(t.late_ms[i] >= 0 && t.late_ms[i] < 900);
    }
}

#ifdef HAVE_ALLOC_HOOKS
static volatile long nallocs;

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    nallocs++;
}

static void on_free(const volatile void *p)
{
    (void)p;
}

/* Returns how many of `cycles` cycles allocated anything. */
static int allocating_cycles(struct collect *c, int cycles)
{
    int bad = 0;
    /* The hook must see allocations, or a zero below would prove nothing. */
    nallocs = 0;
    free(xmalloc(16));
    assert_true(nallocs > 0);
    for (int i = 0; i < cycles; i++) {
        nallocs = 0;
        collect_once(c, 1000 * (i + 10));
        if (nallocs)
            bad++;
    }
    return bad;
}
#endif

/* On recorded files nothing changes between ticks: zero allocations. */
static void test_no_alloc_fixture(void **state)
{
    (void)state;
#ifdef HAVE_ALLOC_HOOKS
    char sys[4096];
    snprintf(sys, sizeof(sys), "%s", fixture("host1/sys"));
    struct collect_opts o = {.proc_root = fixture("host1/proc"), .sys_root = sys};
    struct collect *c = collect_new(&o);
    for (int i = 0; i < 3; i++)
        collect_once(c, 1000 * (i + 1));
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    int bad = allocating_cycles(c, 20);
    __sanitizer_install_malloc_and_free_hooks(NULL, NULL);
    collect_free(c);
    assert_int_equal(bad, 0);
#else
    skip(); /* needs the ASan build's allocator hooks */
#endif
}

/*
 * On the live host, processes and sockets come and go (other tests run in
 * parallel), so a table may need to grow now and then; the steady state is
 * still allocation-free in the vast majority of cycles.
 */
static void test_no_alloc_live(void **state)
{
    (void)state;
#ifdef HAVE_ALLOC_HOOKS
    struct collect_opts o = {0};
    struct collect *c = collect_new(&o);
    for (int i = 0; i < 5; i++)
        collect_once(c, 1000 * (i + 1));
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    int bad = allocating_cycles(c, 30);
    __sanitizer_install_malloc_and_free_hooks(NULL, NULL);
    collect_free(c);
    print_message("live host: %d of 30 cycles allocated\n", bad);
    assert_true(bad <= 2);
#else
    skip();
#endif
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/*
 * Sources keep some files open between ticks (e.g. per-process stat files);
 * all of them are closed again when the collector is freed, and while it
 * runs their number stays bounded.
 */
static void test_no_fd_leak(void **state)
{
    (void)state;
    int before = count_fds();
    struct collect_opts o = {0};
    struct collect *c = collect_new(&o);
    for (int i = 0; i < 5; i++)
        collect_once(c, 1000 * (i + 1));
    int during = count_fds();
    collect_free(c);
    assert_int_equal(count_fds(), before);
    assert_true(during - before <= 256 + 32);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_on_whole_seconds),
        cmocka_unit_test(test_no_alloc_fixture),
        cmocka_unit_test(test_no_alloc_live),
        cmocka_unit_test(test_no_fd_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
