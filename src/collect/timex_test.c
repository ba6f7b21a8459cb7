/*
 * timex_test.c: timex source. adjtimex(2) reports the live kernel clock, not
 * a file, so the node_timex_* values are checked only loosely against this
 * host (present, typed like node_exporter, in plausible ranges: tick > 0, a
 * frequency ratio near 1); the wall clock against time(2); the clocksource
 * metrics exactly against the recorded host1 sysfs.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <time.h>

/* One cycle with proc_root host1 and sys_root `sys`, only timex enabled. */
static struct collect *run(const char *sys)
{
    struct collect_opts o = {.sys_root = sys};
    return tu_collect_only_fixture("host1/proc", &o, (const char *const[]){"timex"}, 1);
}

static void test_live(void **state)
{
    (void)state;
    struct collect *c = run(fixture("host1/sys"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "timex"), 1);
    static const char *const gauges[] = {"node_timex_sync_status",
                                         "node_timex_offset_seconds",
                                         "node_timex_frequency_adjustment_ratio",
                                         "node_timex_maxerror_seconds",
                                         "node_timex_estimated_error_seconds",
                                         "node_timex_status",
                                         "node_timex_loop_time_constant",
                                         "node_timex_tick_seconds",
                                         "node_timex_pps_frequency_hertz",
                                         "node_timex_pps_jitter_seconds",
                                         "node_timex_pps_shift_seconds",
                                         "node_timex_pps_stability_hertz",
                                         "node_timex_tai_offset_seconds",
                                         "node_time_seconds"};
    static const char *const counters[] = {
        "node_timex_pps_jitter_total", "node_timex_pps_calibration_total",
        "node_timex_pps_error_total", "node_timex_pps_stability_exceeded_total"};
    for (size_t i = 0; i < ARRAY_SIZE(gauges); i++) {
        assert_int_equal(tu_type(b, gauges[i]), METRIC_GAUGE);
        assert_int_equal(tu_count(b, gauges[i]), 1);
    }
    for (size_t i = 0; i < ARRAY_SIZE(counters); i++) {
        assert_int_equal(tu_type(b, counters[i]), METRIC_COUNTER);
        assert_true(tu_value(b, counters[i], "") >= 0);
    }
    double tick = tu_value(b, "node_timex_tick_seconds", "");
    assert_true(tick > 0 && tick < 1);
    /* The kernel caps the frequency correction at 500 ppm. */
    assert_float_equal(tu_value(b, "node_timex_frequency_adjustment_ratio", ""), 1, 0.001);
    double sync = tu_value(b, "node_timex_sync_status", "");
    assert_true(sync == 0 || sync == 1);
    assert_true(tu_value(b, "node_timex_status", "") >= 0);
    assert_true(tu_value(b, "node_timex_maxerror_seconds", "") >= 0);
    assert_true(tu_value(b, "node_timex_estimated_error_seconds", "") >= 0);
    assert_float_equal(tu_value(b, "node_time_seconds", ""), (double)time(NULL), 5);
    assert_int_equal(tu_count(b, "node_time_zone_offset_seconds"), 1);

    /* Clocksources: exactly the recorded sysfs files. */
    FILE *f = fopen(fixture("host1/sys/devices/system/clocksource/clocksource0/"
                            "current_clocksource"),
                    "r");
    assert_non_null(f);
    char cur[64], want[160];
    assert_int_equal(fscanf(f, "%63s", cur), 1);
    fclose(f);
    snprintf(want, sizeof(want), "clocksource=\"%s\",device=\"0\"", cur);
    assert_float_equal(tu_value(b, "node_time_clocksource_current_info", want), 1, 0);
    f = fopen(fixture("host1/sys/devices/system/clocksource/clocksource0/available_clocksource"),
              "r");
    assert_non_null(f);
    size_t navail = 0;
    while (fscanf(f, "%63s", cur) == 1) {
        snprintf(want, sizeof(want), "clocksource=\"%s\",device=\"0\"", cur);
        assert_float_equal(tu_value(b, "node_time_clocksource_available_info", want), 1, 0);
        navail++;
    }
    fclose(f);
    assert_true(navail >= 1);
    assert_int_equal(tu_count(b, "node_time_clocksource_available_info"), navail);
    collect_free(c);
}

static void test_no_sysfs(void **state)
{
    (void)state;
    /* Without sysfs the clocksource metrics are absent, not an error. */
    struct collect *c = run(fixture("does-not-exist"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "timex"), 1);
    assert_int_equal(tu_count(b, "node_time_clocksource_current_info"), 0);
    assert_int_equal(tu_count(b, "node_timex_tick_seconds"), 1);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live),
        cmocka_unit_test(test_no_sysfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
