/*
 * query_bench.c: in-process PromQL latency over an existing data directory,
 * without HTTP or JSON, to see where an engine change moves the time.
 * (bench/query_vs_prometheus.py is the comparison with Prometheus; this is
 * the microscope.) Opens the store read-only in effect (no maintenance),
 * evaluates each query at TIME (seconds) RUNS times, instant or, with
 * RANGE and STEP (seconds), as a range query ending at TIME, and prints the
 * median and best wall time and the CPU time per run.
 * Usage: query_bench DATA_DIR TIME RUNS [--range SECONDS --step SECONDS] QUERY...
 */
#include "query/eval.h"
#include "tsdb/tsdb.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: query_bench DATA_DIR TIME RUNS [--range S --step S] QUERY...\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    int64_t t = (int64_t)(atof(argv[2]) * 1000);
    int runs = atoi(argv[3]);
    int64_t range = 0, step = 0;
    int a = 4;
    while (a + 1 < argc && strncmp(argv[a], "--", 2) == 0) {
        if (strcmp(argv[a], "--range") == 0)
            range = (int64_t)(atof(argv[a + 1]) * 1000);
        else if (strcmp(argv[a], "--step") == 0)
            step = (int64_t)(atof(argv[a + 1]) * 1000);
        a += 2;
    }
    if (runs < 1 || (range > 0) != (step > 0)) {
        fprintf(stderr, "query_bench: RUNS must be >= 1; --range needs --step\n");
        return 2;
    }
    char err[256];
    struct tsdb *db;
    struct tsdb_opts o = {.dir = argv[1],
                          .retention_ms = {INT64_MAX / 4, INT64_MAX / 4, INT64_MAX / 4}};
    if (tsdb_open(&db, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "query_bench: %s\n", err);
        return 1;
    }
    double *wall = malloc((size_t)runs * sizeof(*wall));
    for (; a < argc; a++) {
        double cpu0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        size_t nseries = 0;
        for (int r = 0; r < runs; r++) {
            struct query_result res;
            struct query_eval_error e;
            double w0 = now_s(CLOCK_MONOTONIC);
            int rc = range ? query_run_range(db, argv[a], t - range, t, step, NULL, &res, &e)
                           : query_run_instant(db, argv[a], t, NULL, &res, &e);
            wall[r] = now_s(CLOCK_MONOTONIC) - w0;
            if (rc < 0) {
                fprintf(stderr, "query_bench: %s: %s: %s\n", argv[a], e.type, e.msg);
                return 1;
            }
            nseries = res.nseries;
            query_result_release(&res);
        }
        double cpu = (now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / runs;
        qsort(wall, (size_t)runs, sizeof(*wall), cmp_double);
        printf("%9.3f ms median %9.3f ms best %9.3f ms cpu  %6zu series  %s\n",
               wall[runs / 2] * 1e3, wall[0] * 1e3, cpu * 1e3, nseries, argv[a]);
    }
    free(wall);
    tsdb_close(db);
    return 0;
}
