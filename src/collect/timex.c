/*
 * timex.c: the kernel clock's discipline state from adjtimex(2) (offset,
 * frequency correction, error bounds, sync status, PPS counters: the
 * node_timex_* family of node_exporter's "timex" collector) plus the wall
 * clock itself, the time zone and the clocksource (node_exporter's "time"
 * collector: node_time_seconds, node_time_zone_offset_seconds,
 * node_time_clocksource_*_info). Clock skew and an unsynchronised clock
 * break TLS, log correlation and distributed locks, so they belong here.
 *
 * Units follow node_exporter exactly: offset and jitter are in nanoseconds
 * when the kernel has STA_NANO set and microseconds otherwise; maxerror,
 * esterror and tick are always microseconds; freq, ppsfreq and stabil are
 * parts per million with a 16-bit binary fraction (see NOTES in
 * adjtimex(2)), and the frequency is exported as a ratio around 1.
 */
#include "collect/collect_internal.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#define PPM16FRAC        (1000000.0 * 65536.0)
#define MAX_CLOCKSOURCES 64 /* clocksource0..N in sysfs; there is one in practice */

struct timex_state {
    int denied_logged; /* adjtimex was refused (seccomp, ...): said so once */
};

/* node_time_seconds and node_time_zone_offset_seconds{time_zone}. */
static void emit_time(struct collect_ctx *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    metric_fam(ctx->out, "node_time_seconds", "System time in seconds since epoch (1970).",
               METRIC_GAUGE);
    metric_add0(ctx->out, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    struct tm tm;
    if (!localtime_r(&ts.tv_sec, &tm))
        return;
    metric_fam(ctx->out, "node_time_zone_offset_seconds", "System time zone offset in seconds.",
               METRIC_GAUGE);
    metric_add1(ctx->out, (double)tm.tm_gmtoff, "time_zone", tm.tm_zone ? tm.tm_zone : "");
}

/* Strip trailing blanks and the newline sysfs ends its values with. */
static void chomp(char *s, long n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/*
 * node_time_clocksource_{available,current}_info from
 * sys/devices/system/clocksource/clocksourceN. Absent sysfs is not an error:
 * the metrics are simply not there, as with node_exporter.
 */
static void emit_clocksources(struct collect_ctx *ctx)
{
    if (ctx->sys_fd < 0)
        return;
    for (int i = 0; i < MAX_CLOCKSOURCES; i++) {
        char path[96], cur[64], avail[512], dev[12];
        snprintf(path, sizeof(path), "devices/system/clocksource/clocksource%d/current_clocksource",
                 i);
        long n = collect__read_into(ctx, ctx->sys_fd, path, cur, sizeof(cur));
        if (n < 0)
            break;
        chomp(cur, n);
        snprintf(path, sizeof(path),
                 "devices/system/clocksource/clocksource%d/available_clocksource", i);
        n = collect__read_into(ctx, ctx->sys_fd, path, avail, sizeof(avail));
        snprintf(dev, sizeof(dev), "%d", i);
        if (n >= 0) {
            chomp(avail, n);
            metric_fam(ctx->out, "node_time_clocksource_available_info",
                       "Available clocksources read from '/sys/devices/system/clocksource'.",
                       METRIC_GAUGE);
            char *f[32];
            int nf = collect__fields(avail, f, 32);
            for (int k = 0; k < nf; k++)
                metric_add2(ctx->out, 1, "clocksource", f[k], "device", dev);
        }
        if (cur[0]) {
            metric_fam(ctx->out, "node_time_clocksource_current_info",
                       "Current clocksource read from '/sys/devices/system/clocksource'.",
                       METRIC_GAUGE);
            metric_add2(ctx->out, 1, "clocksource", cur, "device", dev);
        }
    }
}

static void gauge(struct collect_ctx *ctx, const char *name, const char *help, double v)
{
    metric_fam(ctx->out, name, help, METRIC_GAUGE);
    metric_add0(ctx->out, v);
}

static void counter(struct collect_ctx *ctx, const char *name, const char *help, double v)
{
    metric_fam(ctx->out, name, help, METRIC_COUNTER);
    metric_add0(ctx->out, v);
}

static int timex_collect(void *p, struct collect_ctx *ctx)
{
    struct timex_state *s = p;
    emit_time(ctx);
    emit_clocksources(ctx);

    struct timex tx;
    memset(&tx, 0, sizeof(tx)); /* modes 0: read only, needs no privilege */
    int status = adjtimex(&tx);
    if (status < 0) {
        if (errno == EPERM || errno == ENOSYS) {
            /* A sandbox forbids the syscall: the clock metrics above still
             * stand, so this is not a failing source. */
            if (!s->denied_logged)
                log_info("collect: timex: adjtimex: %s; node_timex_* not collected",
                         strerror(errno));
            s->denied_logged = 1;
            return COLLECT_OK;
        }
        return collect__fail(ctx, "adjtimex: %s", strerror(errno));
    }
    double div = (tx.status & STA_NANO) ? 1e9 : 1e6;

    gauge(ctx, "node_timex_sync_status",
          "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
          status == TIME_ERROR ? 0 : 1);
    gauge(ctx, "node_timex_offset_seconds",
          "Time offset in between local system and reference clock.", (double)tx.offset / div);
    gauge(ctx, "node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.",
          1 + (double)tx.freq / PPM16FRAC);
    gauge(ctx, "node_timex_maxerror_seconds", "Maximum error in seconds.",
          (double)tx.maxerror / 1e6);
    gauge(ctx, "node_timex_estimated_error_seconds", "Estimated error in seconds.",
          (double)tx.esterror / 1e6);
    gauge(ctx, "node_timex_status", "Value of the status array bits.", (double)tx.status);
    gauge(ctx, "node_timex_loop_time_constant", "Phase-locked loop time constant.",
          (double)tx.constant);
    gauge(ctx, "node_timex_tick_seconds", "Seconds between clock ticks.", (double)tx.tick / 1e6);
    gauge(ctx, "node_timex_pps_frequency_hertz", "Pulse per second frequency.",
          (double)tx.ppsfreq / PPM16FRAC);
    gauge(ctx, "node_timex_pps_jitter_seconds", "Pulse per second jitter.",
          (double)tx.jitter / div);
    /* node_exporter exports the raw shift (log2 of the interval) under a
     * _seconds name; kept for compatibility. */
    gauge(ctx, "node_timex_pps_shift_seconds", "Pulse per second interval duration.",
          (double)tx.shift);
    gauge(ctx, "node_timex_pps_stability_hertz",
          "Pulse per second stability, average of recent frequency changes.",
          (double)tx.stabil / PPM16FRAC);
    counter(ctx, "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.", (double)tx.jitcnt);
    counter(ctx, "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.", (double)tx.calcnt);
    counter(ctx, "node_timex_pps_error_total", "Pulse per second count of calibration errors.",
            (double)tx.errcnt);
    counter(ctx, "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.", (double)tx.stbcnt);
    gauge(ctx, "node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.",
          (double)tx.tai);
    return COLLECT_OK;
}

const struct collect_source collect__src_timex = {
    .name = "timex",
    .state_size = sizeof(struct timex_state),
    .collect = timex_collect,
};
