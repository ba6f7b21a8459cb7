/*
 * expose.c: Prometheus text exposition format 0.0.4 writer (see metric.h).
 * Runs of one family name (from several batches, or emitted in several
 * runs) are merged, as the format requires all samples of a family to be
 * together; families come out in the order they first appear, which is
 * stable from scrape to scrape. Grouping uses a hash table rather than a
 * sort: this runs on every scrape, over hundreds of families.
 */
#include "metric/metric.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct famref {
    const struct metric_buf *buf;
    const struct metric_fam_rec *fam;
    const char *name;
    size_t next; /* next run of the same name, or SIZE_MAX */
    size_t tail; /* on a group's first run: its last run */
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Write an integer's digits; faster than snprintf on the hot path. */
static size_t format_int(long long v, char *out)
{
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    out[len] = '\0';
    return len;
}

size_t metric_format_value(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return format_int((long long)v, out);
    /* Shortest form that reads back as the same double. */
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return (size_t)n;
    }
    return (size_t)snprintf(out, 32, "%.17g", v);
}

/* Escape for HELP (backslash, newline) or label values (also double quote). */
static void add_escaped(struct sbuf *out, const char *s, int quote)
{
    size_t clean = strcspn(s, quote ? "\\\n\"" : "\\\n");
    if (!s[clean]) { /* the common case: nothing to escape */
        sbuf_add(out, s, clean);
        return;
    }
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep) {
            sbuf_add(out, run, (size_t)(s - run));
            sbuf_add(out, rep, 2);
            run = s + 1;
        }
    }
    sbuf_add(out, run, (size_t)(s - run));
}

static void add_sample(struct sbuf *out, const struct metric_buf *b, const char *name,
                       const struct metric_sample *s)
{
    char num[32];
    sbuf_adds(out, name);
    if (s->nlabels) {
        const char *p = metric_str(b, s->labels);
        sbuf_addc(out, '{');
        for (uint32_t i = 0; i < s->nlabels; i++) {
            size_t kl = strlen(p);
            if (i)
                sbuf_addc(out, ',');
            sbuf_add(out, p, kl);
            sbuf_add(out, "=\"", 2);
            p += kl + 1;
            add_escaped(out, p, 1);
            sbuf_addc(out, '"');
            p += strlen(p) + 1;
        }
        sbuf_addc(out, '}');
    }
    sbuf_addc(out, ' ');
    sbuf_add(out, num, metric_format_value(s->value, num));
    sbuf_addc(out, '\n');
}

int metric_expose(const struct metric_buf *const *bufs, size_t nbufs, struct sbuf *out)
{
    static const char *types[] = {"gauge", "counter", "untyped"};
    size_t n = 0;
    for (size_t i = 0; i < nbufs; i++)
        n += bufs[i]->nfams;
    if (n == 0)
        return out->overflow ? -1 : 0;
    struct famref *refs = xmalloc(n * sizeof(*refs));
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    size_t *table = xmalloc(cap * sizeof(*table)); /* group heads, SIZE_MAX: empty */
    for (size_t i = 0; i < cap; i++)
        table[i] = SIZE_MAX;

    /* Chain runs of one name onto the group's first run. */
    n = 0;
    for (size_t i = 0; i < nbufs; i++)
        for (size_t j = 0; j < bufs[i]->nfams; j++, n++) {
            struct famref *r = &refs[n];
            r->buf = bufs[i];
            r->fam = &bufs[i]->fams[j];
            r->name = metric_str(r->buf, r->fam->name);
            r->next = SIZE_MAX;
            r->tail = n;
            size_t h = (size_t)hash_name(r->name) & (cap - 1);
            while (table[h] != SIZE_MAX && strcmp(refs[table[h]].name, r->name) != 0)
                h = (h + 1) & (cap - 1);
            if (table[h] == SIZE_MAX) {
                table[h] = n;
            } else {
                struct famref *head = &refs[table[h]];
                refs[head->tail].next = n;
                head->tail = n;
                r->tail = SIZE_MAX; /* not a head */
            }
        }

    for (size_t i = 0; i < n; i++) {
        if (refs[i].tail == SIZE_MAX)
            continue; /* written with its group's head */
        int header = 0;
        for (size_t k = i; k != SIZE_MAX; k = refs[k].next) {
            const struct metric_buf *b = refs[k].buf;
            const struct metric_fam_rec *f = refs[k].fam;
            if (f->count && !header) {
                sbuf_add(out, "# HELP ", 7);
                sbuf_adds(out, refs[k].name);
                sbuf_addc(out, ' ');
                add_escaped(out, metric_str(b, f->help), 0);
                sbuf_add(out, "\n# TYPE ", 8);
                sbuf_adds(out, refs[k].name);
                sbuf_addc(out, ' ');
                sbuf_adds(out, types[f->type]);
                sbuf_addc(out, '\n');
                header = 1;
            }
            for (uint32_t m = 0; m < f->count; m++)
                add_sample(out, b, refs[k].name, &b->samples[f->first + m]);
        }
    }
    free(table);
    free(refs);
    return out->overflow ? -1 : 0;
}
