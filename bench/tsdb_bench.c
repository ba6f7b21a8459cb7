/*
 * tsdb_bench.c: append throughput and head memory of the store, on the
 * series of a JSON-lines label file (one {"name":"value",...} object per
 * line: the format `promtool tsdb bench write` reads), so both tools ingest
 * the same series. Each scrape appends one sample to every series at a 1 s
 * step; values are counters growing by a per-series step, like scraped data.
 * Usage: tsdb_bench LABELS.jsonl [metrics [scrapes [DIR]]]
 * DIR (created, then left for the caller to delete, as promtool leaves its
 * --out): the store's directory; without it a temporary one, deleted.
 * Prints samples, CPU seconds, samples per CPU-second, and the process's
 * RSS growth per series from just before the first append (the store's
 * memory: index, head, shape cache, WAL buffers; not the producer's batch).
 */
#include "tsdb/tsdb.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXL 16

struct series {
    char *name;
    struct metric_label l[MAXL];
    size_t n;
};

/* Parse one flat JSON object of string pairs (no escapes beyond \" and \\). */
static int parse_line(char *s, struct series *out)
{
    out->n = 0;
    out->name = NULL;
    char *p = strchr(s, '{');
    if (!p)
        return -1;
    p++;
    while (*p) {
        char *kv[2];
        for (int i = 0; i < 2; i++) {
            p = strchr(p, '"');
            if (!p)
                return out->name ? 0 : -1;
            char *start = ++p, *w = p;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                *w++ = *p++;
            }
            if (!*p)
                return -1;
            *w = '\0';
            p++;
            kv[i] = start;
        }
        if (strcmp(kv[0], "__name__") == 0)
            out->name = xstrdup(kv[1]);
        else if (out->n < MAXL)
            out->l[out->n++] = (struct metric_label){xstrdup(kv[0]), xstrdup(kv[1])};
    }
    return out->name ? 0 : -1;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tsdb_bench LABELS.jsonl [metrics [scrapes [DIR]]]\n");
        return 2;
    }
    size_t want = argc > 2 ? (size_t)atol(argv[2]) : 10000;
    int scrapes = argc > 3 ? atoi(argv[3]) : 3000;
    log_set_level(LOG_WARN);
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    struct series *ss = xcalloc(want, sizeof(*ss));
    size_t n = 0;
    char line[65536];
    while (n < want && fgets(line, sizeof(line), f))
        if (parse_line(line, &ss[n]) == 0)
            n++;
    fclose(f);

    char tmp[] = "/tmp/sitrep-tsdb-bench-XXXXXX";
    const char *dir = argc > 4 ? argv[4] : mkdtemp(tmp);
    if (!dir || (argc > 4 && mkdir(dir, 0755) < 0 && errno != EEXIST)) {
        perror(argc > 4 ? argv[4] : tmp);
        return 1;
    }
    struct tsdb *db;
    char err[256];
    struct tsdb_opts o = {.dir = dir, .max_series = (uint32_t)n + 1};
    if (tsdb_open(&db, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct metric_buf b;
    metric_buf_init(&b);
    struct tsdb_append_stats st = {0};
    double c0 = cpu_s();
    /*
     * The batch is built once, as a producer's arena keeps its shape from one
     * tick to the next; each scrape only sets the time and the values, so the
     * CPU measured is the store's (promtool likewise appends by cached ref).
     */
    metric_buf_reset(&b, 0);
    for (size_t i = 0; i < n; i++) {
        metric_fam(&b, ss[i].name, "", METRIC_COUNTER);
        metric_add(&b, 0, ss[i].n, ss[i].l);
    }
    metric_buf_keep_shape(&b);                 /* and says so, as promtool appends by ref */
    double *rate = xmalloc(n * sizeof(*rate)); /* per-series counter step */
    for (size_t i = 0; i < n; i++)
        rate[i] = (double)(i % 97 + 1);
    /* The store's growth only: the producer's batch is built by now. */
    long rss0 = rss_kib();
    for (int t = 0; t < scrapes; t++) {
        b.ts_ms = 1700000000000ll + t * 1000ll;
        for (size_t i = 0; i < n; i++)
            b.samples[i].value = (double)t * rate[i];
        tsdb_append_batch(db, "bench", &b, &st);
        if (t % 1000 == 999)
            tsdb_sync(db);
    }
    double cpu = cpu_s() - c0;
    long rss1 = rss_kib();
    printf("series=%zu scrapes=%d samples=%llu cpu_s=%.2f samples_per_cpu_s=%.0f "
           "rss_growth_per_series_bytes=%.0f\n",
           n, scrapes, (unsigned long long)st.accepted, cpu, (double)st.accepted / cpu,
           (double)(rss1 - rss0) * 1024.0 / (double)n);
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (argc <= 4 && system(cmd) != 0)
        return 1;
    metric_buf_release(&b);
    free(rate);
    return 0;
}
