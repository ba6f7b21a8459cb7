/*
 * import.c: `sitrep import FILE... --data DIR` (see import.h). Files are
 * read whole, every sample is kept (time, series, value), sorted by time,
 * and appended one timestamp at a time, as a scrape would have, so the
 * store's usual checks apply (out of order, too old, series cap: counted
 * and reported). Windows are then cut into blocks and the store closed.
 * The daemon must not run on DIR meanwhile (its lock is taken).
 */
#include "ingest/import.h"
#include "ingest/expfmt.h"
#include "tsdb/tsdb.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Samples held at once; past this the import stops with an error. */
#define IMPORT_MAX_SAMPLES ((size_t)200 << 20)

struct series {
    char *name, *help;
    enum metric_type type;
    struct metric_label *labels; /* owned strings */
    size_t nlabels;
};

struct point {
    int64_t ts;
    uint32_t series;
    double v;
};

struct import {
    struct series *s;
    size_t ns, scap;
    struct point *p;
    size_t np, pcap;
    /* series key -> index, open addressing */
    char **keys;
    uint32_t *idx;
    size_t kcap;
    unsigned long errors;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* "name\xff l=v\xff ..." identifies a series. */
static char *series_key(const struct expfmt_sample *e)
{
    struct sbuf b;
    sbuf_init(&b, 0);
    sbuf_adds(&b, e->name);
    for (size_t i = 0; i < e->nlabels; i++)
        sbuf_addf(&b, "\xff%s=%s", e->labels[i].name, e->labels[i].value);
    char *k = sbuf_detach(&b, NULL);
    sbuf_release(&b); /* detach leaves a fresh empty buffer behind */
    return k;
}

static void grow_table(struct import *im)
{
    size_t cap = im->kcap ? im->kcap * 2 : 1024;
    char **keys = xcalloc(cap, sizeof(*keys));
    uint32_t *idx = xcalloc(cap, sizeof(*idx));
    for (size_t i = 0; i < im->kcap; i++)
        if (im->keys[i]) {
            size_t j = hash_str(im->keys[i]) & (cap - 1);
            while (keys[j])
                j = (j + 1) & (cap - 1);
            keys[j] = im->keys[i];
            idx[j] = im->idx[i];
        }
    free(im->keys);
    free(im->idx);
    im->keys = keys;
    im->idx = idx;
    im->kcap = cap;
}

static uint32_t series_of(struct import *im, const struct expfmt_sample *e)
{
    if ((im->ns + 1) * 4 > im->kcap * 3)
        grow_table(im);
    char *k = series_key(e);
    size_t j = hash_str(k) & (im->kcap - 1);
    while (im->keys[j]) {
        if (strcmp(im->keys[j], k) == 0) {
            free(k);
            return im->idx[j];
        }
        j = (j + 1) & (im->kcap - 1);
    }
    im->keys[j] = k;
    im->idx[j] = (uint32_t)im->ns;
    void *p = im->s;
    util_grow(&p, &im->scap, im->ns + 1, sizeof(*im->s));
    im->s = p;
    struct series *s = &im->s[im->ns];
    s->name = xstrdup(e->name);
    s->help = xstrdup(e->help ? e->help : "");
    s->type = !e->type                          ? METRIC_UNTYPED
              : strcmp(e->type, "counter") == 0 ? METRIC_COUNTER
              : strcmp(e->type, "gauge") == 0   ? METRIC_GAUGE
                                                : METRIC_UNTYPED;
    s->nlabels = e->nlabels;
    s->labels = xcalloc(e->nlabels ? e->nlabels : 1, sizeof(*s->labels));
    for (size_t i = 0; i < e->nlabels; i++)
        s->labels[i] =
            (struct metric_label){xstrdup(e->labels[i].name), xstrdup(e->labels[i].value)};
    return (uint32_t)im->ns++;
}

static int read_file(struct import *im, const char *path, enum expfmt_flavour f)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "sitrep import: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *buf =
        st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : "";
    close(fd);
    if (buf == MAP_FAILED) {
        fprintf(stderr, "sitrep import: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct expfmt p;
    expfmt_init(&p, buf, (size_t)st.st_size, f);
    struct expfmt_sample e;
    char err[256];
    int r, rc = 0;
    while ((r = expfmt_next(&p, &e, err, sizeof(err))) != 0) {
        if (r < 0) {
            if (im->errors++ < 20)
                fprintf(stderr, "sitrep import: %s:%s\n", path, err);
            continue;
        }
        if (!e.has_ts) {
            if (im->errors++ < 20)
                fprintf(stderr, "sitrep import: %s:%u: a sample without a timestamp\n", path,
                        p.line);
            continue;
        }
        if (im->np == IMPORT_MAX_SAMPLES) {
            fprintf(stderr, "sitrep import: %s: more than %zu samples; split the file\n", path,
                    IMPORT_MAX_SAMPLES);
            rc = -1;
            break;
        }
        uint32_t s = series_of(im, &e);
        void *pp = im->p;
        util_grow(&pp, &im->pcap, im->np + 1, sizeof(*im->p));
        im->p = pp;
        im->p[im->np++] = (struct point){e.ts_ms, s, e.value};
    }
    expfmt_release(&p);
    if (st.st_size)
        munmap((void *)buf, (size_t)st.st_size);
    return rc;
}

static int by_time(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

static void release(struct import *im)
{
    for (size_t i = 0; i < im->ns; i++) {
        for (size_t k = 0; k < im->s[i].nlabels; k++) {
            free((char *)im->s[i].labels[k].name);
            free((char *)im->s[i].labels[k].value);
        }
        free(im->s[i].labels);
        free(im->s[i].name);
        free(im->s[i].help);
    }
    for (size_t i = 0; i < im->kcap; i++)
        free(im->keys[i]);
    free(im->keys);
    free(im->idx);
    free(im->s);
    free(im->p);
}

static void usage(FILE *out)
{
    fputs("Usage: sitrep import FILE... --data DIR [--format openmetrics|text]\n"
          "\n"
          "Load samples with timestamps into DIR's store (sitrep serve must not run\n"
          "on DIR). openmetrics (default): timestamps in seconds, as promtool tsdb\n"
          "create-blocks-from openmetrics reads; text: Prometheus text format with\n"
          "millisecond timestamps. Samples out of order or older than what DIR holds\n"
          "are refused and counted.\n",
          out);
}

int ingest_import_main(int argc, char **argv)
{
    const char *data = NULL;
    enum expfmt_flavour f = EXPFMT_OPENMETRICS;
    const char *files[256];
    size_t nfiles = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "text") == 0)
                f = EXPFMT_TEXT;
            else if (strcmp(v, "openmetrics") != 0) {
                fprintf(stderr, "sitrep import: --format: openmetrics or text\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || nfiles == ARRAY_SIZE(files)) {
            usage(stderr);
            return 2;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!data || !nfiles) {
        usage(stderr);
        return 2;
    }
    char err[512];
    int lock = util_lock_dir(data, err, sizeof(err));
    if (lock < 0) {
        fprintf(stderr, "sitrep import: %s\n", err);
        return 1;
    }
    struct import im = {0};
    int rc = 0;
    for (size_t i = 0; i < nfiles && rc == 0; i++)
        rc = read_file(&im, files[i], f);
    qsort(im.p, im.np, sizeof(*im.p), by_time);

    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/tsdb", data);
    struct tsdb_opts o = {.dir = dir, .max_series = (uint32_t)(im.ns + 1024)};
    struct tsdb *db = NULL;
    if (rc == 0 && tsdb_open(&db, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "sitrep import: %s\n", err);
        rc = -1;
    }
    struct tsdb_append_stats st = {0};
    struct metric_buf b;
    metric_buf_init(&b);
    for (size_t i = 0; db && i < im.np;) {
        metric_buf_reset(&b, im.p[i].ts);
        size_t j = i;
        for (; j < im.np && im.p[j].ts == im.p[i].ts; j++) {
            const struct series *s = &im.s[im.p[j].series];
            metric_fam(&b, s->name, s->help, s->type);
            metric_add(&b, im.p[j].v, s->nlabels, s->labels);
        }
        tsdb_append_batch(db, "import", &b, &st);
        i = j;
    }
    metric_buf_release(&b);
    if (db) {
        tsdb_maintain(db, TSDB_MAINT_FLUSH);
        tsdb_close(db);
        printf("imported %llu samples of %zu series; refused: %llu out of order, %llu too old, "
               "%llu over the series cap, %llu invalid; %lu bad lines\n",
               (unsigned long long)st.accepted, im.ns, (unsigned long long)st.out_of_order,
               (unsigned long long)st.too_old, (unsigned long long)st.series_limit,
               (unsigned long long)st.invalid, im.errors);
    }
    release(&im);
    close(lock);
    return rc < 0 ? 1 : im.errors ? 1 : 0;
}
