/*
 * metric.h: the in-memory form of "a batch of samples taken at one moment",
 * shared by every producer (host collectors, later log ingestion, scrapes,
 * self-instrumentation) and every consumer (the /metrics exposition, later
 * the time-series store's appender).
 *
 * A metric_buf is an arena: families, samples and their strings are appended
 * into arrays that are reset, never freed, between batches, so a producer that
 * emits the same shape every second allocates nothing once the arrays have
 * grown to that shape. A family starts with metric_fam(); the samples that
 * follow belong to it until the next metric_fam(). The same family name may
 * be started more than once in a batch (e.g. per network device); the
 * exposition merges such runs.
 */
#ifndef SITREP_METRIC_H
#define SITREP_METRIC_H

#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

enum metric_type { METRIC_GAUGE, METRIC_COUNTER, METRIC_UNTYPED };

#define METRIC_MAX_LABELS 16

struct metric_label {
    const char *name;
    const char *value;
};

struct metric_fam_rec {
    uint32_t name;  /* arena offset of the NUL-terminated family name */
    uint32_t help;  /* arena offset of the help text */
    uint32_t first; /* index of the first sample of this run */
    uint32_t count; /* samples in this run */
    enum metric_type type;
};

struct metric_sample {
    uint32_t labels;  /* arena offset of "name\0value\0" pairs */
    uint32_t nlabels; /* number of pairs */
    double value;
};

struct metric_buf {
    char *arena;
    size_t arena_len, arena_cap;
    struct metric_fam_rec *fams;
    size_t nfams, fams_cap;
    struct metric_sample *samples;
    size_t nsamples, samples_cap;
    int64_t ts_ms; /* when the batch was taken (ms since epoch); 0 if unset */
    /* Nonzero: metric_buf_keep_shape()'s stamp, voided by any change below. */
    uint64_t shape_stamp;
};

void metric_buf_init(struct metric_buf *b);
void metric_buf_release(struct metric_buf *b);
/* Forget the contents, keep the memory. */
void metric_buf_reset(struct metric_buf *b, int64_t ts_ms);
/* Swap two buffers' contents (cheap: pointers only). */
void metric_buf_swap(struct metric_buf *a, struct metric_buf *b);

/*
 * Promise that b will next be sent with the same families, samples and
 * labels, only ts_ms and the samples' values changed: the store then skips
 * comparing the batch with the last one it got from the same producer (a
 * memcmp of every label byte). Every metric_* call that changes b (reset,
 * fam, add, rollback) voids the promise; writing b's fields other than
 * ts_ms and samples[].value directly after the call breaks it.
 */
void metric_buf_keep_shape(struct metric_buf *b);

/* A position in a batch, to drop what a failing producer emitted after it. */
struct metric_mark {
    size_t nfams, nsamples, arena_len;
    uint32_t last_count; /* count of the family open at the mark */
};

void metric_buf_mark(const struct metric_buf *b, struct metric_mark *m);
/* Forget everything appended since the mark (no memory is freed). */
void metric_buf_rollback(struct metric_buf *b, const struct metric_mark *m);

/* Start a run of the family `name`. name must be a valid metric name. */
void metric_fam(struct metric_buf *b, const char *name, const char *help, enum metric_type type);
/* Append a sample to the current family (one must have been started). */
void metric_add(struct metric_buf *b, double value, size_t nlabels,
                const struct metric_label *labels);
/* Shorthands for zero, one and two labels. */
void metric_add0(struct metric_buf *b, double value);
void metric_add1(struct metric_buf *b, double value, const char *k, const char *v);
void metric_add2(struct metric_buf *b, double value, const char *k1, const char *v1, const char *k2,
                 const char *v2);

static inline const char *metric_str(const struct metric_buf *b, uint32_t off)
{
    return b->arena + off;
}

/* 1 if s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), else 0. */
int metric_name_valid(const char *s);
/* 1 if s is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*), else 0. */
int metric_label_name_valid(const char *s);

/*
 * Format v as Prometheus text does (NaN, +Inf, -Inf, integers without
 * exponent where exact, else the shortest round-tripping form). out must hold
 * 32 bytes. Returns the length.
 */
size_t metric_format_value(double v, char *out);

/*
 * Write the batches in Prometheus text exposition format 0.0.4: one HELP and
 * TYPE per family name, all samples of a family together, families in the
 * order they first appear. Returns 0, or -1 if out hit its cap.
 */
int metric_expose(const struct metric_buf *const *bufs, size_t nbufs, struct sbuf *out);

#endif
