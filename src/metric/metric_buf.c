/*
 * metric_buf.c: the sample batch arena (see metric.h). Hot path: every
 * collector tick appends a few thousand samples here, so appends are
 * memcpy into pre-grown arrays and nothing is freed between batches.
 */
#include "metric/metric.h"
#include "util/util.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void metric_buf_init(struct metric_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void metric_buf_release(struct metric_buf *b)
{
    free(b->arena);
    free(b->fams);
    free(b->samples);
    memset(b, 0, sizeof(*b));
}

void metric_buf_reset(struct metric_buf *b, int64_t ts_ms)
{
    b->shape_stamp = 0;
    b->arena_len = 0;
    b->nfams = 0;
    b->nsamples = 0;
    b->ts_ms = ts_ms;
}

void metric_buf_swap(struct metric_buf *a, struct metric_buf *b)
{
    struct metric_buf t = *a;
    *a = *b;
    *b = t;
}

void metric_buf_keep_shape(struct metric_buf *b)
{
    /* Unique in the process: a stamp names one shape of one buffer. */
    static _Atomic uint64_t last;
    b->shape_stamp = atomic_fetch_add(&last, 1) + 1;
}

void metric_buf_mark(const struct metric_buf *b, struct metric_mark *m)
{
    m->nfams = b->nfams;
    m->nsamples = b->nsamples;
    m->arena_len = b->arena_len;
    m->last_count = b->nfams ? b->fams[b->nfams - 1].count : 0;
}

void metric_buf_rollback(struct metric_buf *b, const struct metric_mark *m)
{
    b->shape_stamp = 0;
    b->nfams = m->nfams;
    b->nsamples = m->nsamples;
    b->arena_len = m->arena_len;
    if (b->nfams)
        b->fams[b->nfams - 1].count = m->last_count;
}

static uint32_t arena_put(struct metric_buf *b, const char *s, size_t n)
{
    void *p = b->arena;
    util_grow(&p, &b->arena_cap, b->arena_len + n + 1, 1);
    b->arena = p;
    uint32_t off = (uint32_t)b->arena_len;
    memcpy(b->arena + off, s, n);
    b->arena[off + n] = '\0';
    b->arena_len += n + 1;
    return off;
}

void metric_fam(struct metric_buf *b, const char *name, const char *help, enum metric_type type)
{
    assert(metric_name_valid(name));
    b->shape_stamp = 0;
    void *p = b->fams;
    util_grow(&p, &b->fams_cap, b->nfams + 1, sizeof(*b->fams));
    b->fams = p;
    struct metric_fam_rec *f = &b->fams[b->nfams++];
    f->name = arena_put(b, name, strlen(name));
    f->help = arena_put(b, help, strlen(help));
    f->first = (uint32_t)b->nsamples;
    f->count = 0;
    f->type = type;
}

void metric_add(struct metric_buf *b, double value, size_t nlabels,
                const struct metric_label *labels)
{
    assert(b->nfams > 0);
    assert(nlabels <= METRIC_MAX_LABELS);
    b->shape_stamp = 0;
    void *p = b->samples;
    util_grow(&p, &b->samples_cap, b->nsamples + 1, sizeof(*b->samples));
    b->samples = p;
    struct metric_sample *s = &b->samples[b->nsamples++];
    s->value = value;
    s->nlabels = (uint32_t)nlabels;
    s->labels = (uint32_t)b->arena_len;
    for (size_t i = 0; i < nlabels; i++) {
        assert(metric_label_name_valid(labels[i].name));
        arena_put(b, labels[i].name, strlen(labels[i].name));
        arena_put(b, labels[i].value, strlen(labels[i].value));
    }
    b->fams[b->nfams - 1].count++;
}

void metric_add0(struct metric_buf *b, double value)
{
    metric_add(b, value, 0, NULL);
}

void metric_add1(struct metric_buf *b, double value, const char *k, const char *v)
{
    struct metric_label l[1] = {{k, v}};
    metric_add(b, value, 1, l);
}

void metric_add2(struct metric_buf *b, double value, const char *k1, const char *v1, const char *k2,
                 const char *v2)
{
    struct metric_label l[2] = {{k1, v1}, {k2, v2}};
    metric_add(b, value, 2, l);
}

static int name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (colon && c == ':')
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int valid(const char *s, int colon)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!name_char(*p, p == s, colon))
            return 0;
    return 1;
}

int metric_name_valid(const char *s)
{
    return valid(s, 1);
}

int metric_label_name_valid(const char *s)
{
    return valid(s, 0);
}
