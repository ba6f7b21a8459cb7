/*
 * ingest_bench.c: how fast access-log ingestion parses and aggregates. It
 * runs the real reader (src/ingest: pread in 256 KiB chunks, line split,
 * parser, route normalisation, aggregates, client sketches) over a whole
 * file from its start, on the calling thread, then emits one batch, and
 * prints one line of JSON: lines, requests counted, the thread's CPU
 * seconds and wall seconds for the reading, lines per CPU second, the
 * batch's sample count and the process's peak RSS (VmHWM).
 *
 * Usage: ingest_bench FILE [common|combined|json] [request_time unit]
 * (bench/accesslog_vs_goaccess.py runs it against GoAccess on the same file.)
 */
#include "ingest/ingest.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double sum(const struct metric_buf *b, const char *name)
{
    double v = 0;
    for (size_t i = 0; i < b->nfams; i++)
        if (strcmp(metric_str(b, b->fams[i].name), name) == 0)
            for (uint32_t k = 0; k < b->fams[i].count; k++)
                v += b->samples[b->fams[i].first + k].value;
    return v;
}

/*
 * Peak RSS of this program in KiB (VmHWM). Not getrusage: its ru_maxrss
 * also counts the parent's memory from before exec when the parent
 * vforked (as Python's subprocess does).
 */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ingest_bench FILE [common|combined|json] [s|ms|us]\n");
        return 2;
    }
    struct ingest_log l;
    ingest_log_defaults(&l);
    l.service = "bench";
    l.paths = &argv[1];
    l.npaths = 1;
    l.from_beginning = 1;
    if (argc > 2 && ingest_format_parse(argv[2], &l.format) < 0) {
        fprintf(stderr, "ingest_bench: unknown format %s\n", argv[2]);
        return 2;
    }
    if (argc > 3 && ingest_unit_parse(argv[3], &l.request_time) < 0) {
        fprintf(stderr, "ingest_bench: unknown unit %s\n", argv[3]);
        return 2;
    }
    struct ingest_opts o = {.logs = &l, .nlogs = 1, .interval_s = 1};
    struct ingest *ing = ingest_new(&o);
    if (!ing)
        return 1;
    int64_t cpu0 = util_thread_cpu_ns(), wall0 = util_mono_ns(), now = util_now_ms();
    while (ingest_poll(ing, now) > 0)
        ;
    int64_t cpu = util_thread_cpu_ns() - cpu0, wall = util_mono_ns() - wall0;
    ingest_tick(ing, now);
    const struct metric_buf *b = ingest_last(ing);
    double lines = sum(b, "sitrep_ingest_lines_total");
    double requests = sum(b, "accesslog_requests_total");
    printf("{\"lines\":%.0f,\"requests\":%.0f,\"cpu_s\":%.6f,\"wall_s\":%.6f,"
           "\"lines_per_cpu_s\":%.0f,\"samples\":%zu,\"maxrss_kib\":%ld}\n",
           lines, requests, (double)cpu / 1e9, (double)wall / 1e9,
           cpu ? lines / ((double)cpu / 1e9) : 0, b->nsamples, peak_rss_kib());
    ingest_free(ing);
    return lines > 0 ? 0 : 1;
}
