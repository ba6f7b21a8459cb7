/*
 * record_corpus.c: record this host's metrics at 1 s into a binary file, a
 * real corpus for bench/chunk_bench.c. Drives the real collector like the
 * daemon does (ticks on whole wall-clock seconds) and writes every sample.
 * Usage: record_corpus OUT SECONDS   (e.g. /tmp/host_corpus.bin 2700; the file
 * is not committed: about 2 MB a minute for 400 series)
 *
 * File layout (little-endian, for benchmarks only, not a stable format):
 *   "SRC1"
 *   records, each starting with a tag byte:
 *     'S' u32 id, u16 len, len bytes   a new series: family{labels}
 *     'T' i64 ts_ms, u32 count, count x (u32 id, u64 value bits)   one tick
 */
#include "collect/collect.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct key_map {
    char **keys;   /* by slot; NULL when empty */
    uint32_t *ids; /* by slot */
    size_t cap;    /* power of two */
    size_t n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void map_grow(struct key_map *m);

/* The id of key; *fresh is set when the key was new. */
static uint32_t map_get(struct key_map *m, const char *key, int *fresh)
{
    if (2 * (m->n + 1) > m->cap)
        map_grow(m);
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) {
            *fresh = 0;
            return m->ids[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = xstrdup(key);
    m->ids[i] = (uint32_t)m->n++;
    *fresh = 1;
    return m->ids[i];
}

static void map_grow(struct key_map *m)
{
    struct key_map g = {xcalloc(m->cap ? 2 * m->cap : 1024, sizeof(char *)),
                        xcalloc(m->cap ? 2 * m->cap : 1024, sizeof(uint32_t)),
                        m->cap ? 2 * m->cap : 1024, 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = hash_str(m->keys[i]) & (g.cap - 1);
        while (g.keys[j])
            j = (j + 1) & (g.cap - 1);
        g.keys[j] = m->keys[i];
        g.ids[j] = m->ids[i];
        g.n++;
    }
    free(m->keys);
    free(m->ids);
    *m = g;
}

static void series_key(const struct metric_buf *b, const struct metric_fam_rec *f,
                       const struct metric_sample *s, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s{", metric_str(b, f->name));
    const char *p = metric_str(b, s->labels);
    for (uint32_t i = 0; i < s->nlabels && n < cap; i++) {
        const char *k = p, *v = p + strlen(p) + 1;
        n += (size_t)snprintf(out + n, cap - n, "%s%s=\"%s\"", i ? "," : "", k, v);
        p = v + strlen(v) + 1;
    }
    if (n < cap)
        snprintf(out + n, cap - n, "}");
}

static void sleep_until_ms(int64_t at)
{
    struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: record_corpus OUT SECONDS\n");
        return 2;
    }
    long secs = atol(argv[2]);
    FILE *f = fopen(argv[1], "wb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    log_set_level(LOG_ERROR);
    struct collect_opts o = {0};
    struct collect *c = collect_new(&o);
    struct key_map m = {0};
    char key[2048];
    fwrite("SRC1", 1, 4, f);
    uint32_t *ids = NULL;
    uint64_t *bits = NULL;
    size_t cap = 0;
    int64_t next = (util_now_ms() / 1000 + 1) * 1000;
    for (long t = 0; t < secs; t++, next += 1000) {
        sleep_until_ms(next);
        collect_once(c, next);
        const struct metric_buf *b = collect_last(c);
        if (b->nsamples > cap) {
            cap = b->nsamples;
            ids = xrealloc(ids, cap * sizeof(*ids));
            bits = xrealloc(bits, cap * sizeof(*bits));
        }
        uint32_t cnt = 0;
        for (size_t fi = 0; fi < b->nfams; fi++) {
            const struct metric_fam_rec *fr = &b->fams[fi];
            for (uint32_t k = 0; k < fr->count; k++) {
                const struct metric_sample *s = &b->samples[fr->first + k];
                series_key(b, fr, s, key, sizeof(key));
                int fresh;
                uint32_t id = map_get(&m, key, &fresh);
                if (fresh) {
                    uint16_t len = (uint16_t)strlen(key);
                    fputc('S', f);
                    fwrite(&id, 4, 1, f);
                    fwrite(&len, 2, 1, f);
                    fwrite(key, 1, len, f);
                }
                ids[cnt] = id;
                memcpy(&bits[cnt], &s->value, 8);
                cnt++;
            }
        }
        fputc('T', f);
        fwrite(&next, 8, 1, f);
        fwrite(&cnt, 4, 1, f);
        for (uint32_t i = 0; i < cnt; i++) {
            fwrite(&ids[i], 4, 1, f);
            fwrite(&bits[i], 8, 1, f);
        }
        fflush(f);
        if (t % 60 == 0)
            fprintf(stderr, "record_corpus: %ld/%ld s, %zu series\n", t, secs, m.n);
    }
    fclose(f);
    collect_free(c);
    free(ids);
    free(bits);
    for (size_t i = 0; i < m.cap; i++)
        free(m.keys[i]);
    free(m.keys);
    free(m.ids);
    return 0;
}
