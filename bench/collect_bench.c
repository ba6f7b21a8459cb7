/*
 * collect_bench.c: CPU cost of one full host collection cycle on this host.
 * Runs the real collector (all sources, real /proc and /sys) back to back
 * and prints the median, p90 and mean thread CPU time per cycle, plus the
 * cost of rendering /metrics from the batch. Used by bench/run.sh.
 * Usage: collect_bench [cycles [disabled-source,...]]
 */
#include "collect/collect.h"
#include "util/log.h"
#include "util/sbuf.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 600;
    if (n < 10)
        n = 10;
    log_set_level(LOG_ERROR);
    struct collect_opts o = {0};
    const char *off[32];
    char *list = argc > 2 ? argv[2] : NULL;
    for (char *tok = list ? strtok(list, ",") : NULL; tok && o.ndisabled < 32;
         tok = strtok(NULL, ","))
        off[o.ndisabled++] = tok;
    o.disabled = off;
    struct collect *c = collect_new(&o);
    int64_t *cyc = xmalloc((size_t)n * sizeof(*cyc));
    int64_t *exp = xmalloc((size_t)n * sizeof(*exp));
    struct sbuf sb;
    sbuf_init(&sb, 0);
    collect_once(c, util_now_ms()); /* warm up: buffers reach steady size */
    for (int i = 0; i < n; i++) {
        int64_t t0 = util_thread_cpu_ns();
        collect_once(c, util_now_ms());
        int64_t t1 = util_thread_cpu_ns();
        sbuf_reset(&sb);
        collect_expose(c, &sb);
        cyc[i] = t1 - t0;
        exp[i] = util_thread_cpu_ns() - t1;
    }
    const struct metric_buf *b = collect_last(c);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)cyc[i];
    qsort(cyc, (size_t)n, sizeof(*cyc), cmp_i64);
    qsort(exp, (size_t)n, sizeof(*exp), cmp_i64);
    printf("cycles=%d samples=%zu bytes=%zu cycle_cpu_median_us=%.1f cycle_cpu_p90_us=%.1f "
           "cycle_cpu_mean_us=%.1f expose_cpu_median_us=%.1f\n",
           n, b->nsamples, sb.len, (double)cyc[n / 2] / 1e3, (double)cyc[n * 9 / 10] / 1e3,
           sum / n / 1e3, (double)exp[n / 2] / 1e3);
    sbuf_release(&sb);
    free(cyc);
    free(exp);
    collect_free(c);
    return 0;
}
