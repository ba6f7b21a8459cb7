/*
 * expose.c: Prometheus text exposition format 0.0.4 writer (see metric.h).
 * Families of several batches are merged by name and written in name order,
 * which the format requires (all samples of one family together) and which
 * makes the output stable for diffing.
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
    size_t order; /* keeps runs of one name in emission order */
};

static int famref_cmp(const void *a, const void *b)
{
    const struct famref *x = a, *y = b;
    int c = strcmp(metric_str(x->buf, x->fam->name), metric_str(y->buf, y->fam->name));
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

size_t metric_format_value(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return (size_t)snprintf(out, 32, "%lld", (long long)v);
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
    struct famref *refs = xmalloc(n * sizeof(*refs));
    n = 0;
    for (size_t i = 0; i < nbufs; i++)
        for (size_t j = 0; j < bufs[i]->nfams; j++) {
            refs[n].buf = bufs[i];
            refs[n].fam = &bufs[i]->fams[j];
            refs[n].order = n;
            n++;
        }
    qsort(refs, n, sizeof(*refs), famref_cmp);

    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct metric_buf *b = refs[i].buf;
        const struct metric_fam_rec *f = refs[i].fam;
        const char *name = metric_str(b, f->name);
        if (f->count == 0)
            continue;
        if (!prev || strcmp(prev, name) != 0) {
            sbuf_add(out, "# HELP ", 7);
            sbuf_adds(out, name);
            sbuf_addc(out, ' ');
            add_escaped(out, metric_str(b, f->help), 0);
            sbuf_add(out, "\n# TYPE ", 8);
            sbuf_adds(out, name);
            sbuf_addc(out, ' ');
            sbuf_adds(out, types[f->type]);
            sbuf_addc(out, '\n');
            prev = name;
        }
        for (uint32_t k = 0; k < f->count; k++)
            add_sample(out, b, name, &b->samples[f->first + k]);
    }
    free(refs);
    return out->overflow ? -1 : 0;
}
