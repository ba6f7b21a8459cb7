/*
 * self_test.c: the self source reports this very test process from the real
 * /proc/self, whatever proc_root points at. Values are checked against what
 * the test reads itself (rlimits, /proc/self/fd, /proc/self/task, clocks).
 * proc_root is a fixture root throughout: self must not read from it.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Entries of a /proc directory, without "." and "..". */
static double count_dir(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    double n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_self(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("procs/proc"), "self");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "self"), 1);

    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    double cpu_s = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
    double v = tu_value(b, "process_cpu_seconds_total", "");
    assert_true(v >= 0 && v <= cpu_s + 0.05);
    assert_int_equal(tu_type(b, "process_cpu_seconds_total"), METRIC_COUNTER);

    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_float_equal(tu_value(b, "process_max_fds", ""), (double)rl.rlim_cur, 0);
    assert_int_equal(getrlimit(RLIMIT_AS, &rl), 0);
    assert_float_equal(tu_value(b, "process_virtual_memory_max_bytes", ""),
                       rl.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : (double)rl.rlim_cur,
                       0);

    /* The source's own directory handle on /proc/self/fd is open in both
     * counts, the test's opendir only in its own. */
    double fds = count_dir("/proc/self/fd");
    assert_float_equal(tu_value(b, "process_open_fds", ""), fds - 1, 0);
    assert_float_equal(tu_value(b, "sitrep_threads", ""), count_dir("/proc/self/task"), 0);

    double now = (double)time(NULL), start = tu_value(b, "process_start_time_seconds", "");
    assert_true(start <= now + 1 && start > now - 3600);
    assert_true(tu_value(b, "process_resident_memory_bytes", "") > 0);
    assert_true(tu_value(b, "process_virtual_memory_bytes", "") >=
                tu_value(b, "process_resident_memory_bytes", ""));
    static const char *const gauges[] = {
        "process_open_fds",
        "process_max_fds",
        "process_virtual_memory_bytes",
        "process_virtual_memory_max_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "sitrep_threads",
    };
    for (size_t i = 0; i < ARRAY_SIZE(gauges); i++)
        assert_int_equal(tu_type(b, gauges[i]), METRIC_GAUGE);
    assert_string_equal(tu_help(b, "process_resident_memory_bytes"),
                        "Resident memory size in bytes.");
    collect_free(c);
}

static void test_ticks_leak_nothing(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "self");
    double fds = tu_value(collect_last(c), "process_open_fds", "");
    double start = tu_value(collect_last(c), "process_start_time_seconds", "");
    for (int i = 2; i <= 5; i++)
        collect_once(c, i * 1000);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_errors(b, "self"), 0);
    assert_float_equal(tu_value(b, "process_open_fds", ""), fds, 0);
    assert_float_equal(tu_value(b, "process_start_time_seconds", ""), start, 0);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self),
        cmocka_unit_test(test_ticks_leak_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
