/*
 * expfmt.h: a parser for the Prometheus text exposition format (0.0.4) and
 * OpenMetrics 1.0 text: what `sitrep import` reads (the same files promtool
 * turns into blocks) and what scraping application endpoints will read.
 *
 * The parser is a pull loop over a buffer: each call returns the next
 * sample (with its family's type and help when declared) or an error that
 * says where: "LINE:COL: what". Malformed input never crashes it and is
 * never partially applied: a bad line is reported and skipped.
 *
 * Names are at most EXPFMT_MAX_NAME bytes, label values and help text must
 * be valid UTF-8 (the store takes nothing else).
 *
 * Timestamps: OpenMetrics writes seconds (decimals allowed), the text format
 * milliseconds; both come out as milliseconds. Exemplars (OpenMetrics
 * `# {...} v`) are skipped.
 */
#ifndef SITREP_INGEST_EXPFMT_H
#define SITREP_INGEST_EXPFMT_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"

#define EXPFMT_MAX_LABELS 32
#define EXPFMT_MAX_LINE   (1 << 20) /* longer lines are errors */
#define EXPFMT_MAX_NAME   255       /* bytes of a metric or label name; longer ones are errors */

enum expfmt_flavour { EXPFMT_TEXT, EXPFMT_OPENMETRICS };

struct expfmt_sample {
    const char *name; /* the sample's metric name (with _total, _bucket... suffixes) */
    struct metric_label labels[EXPFMT_MAX_LABELS];
    size_t nlabels;
    double value;
    int has_ts;
    int64_t ts_ms;
    /* The family it belongs to, as declared by # TYPE / # HELP (or NULL / ""). */
    const char *type; /* "counter", "gauge", "histogram", ... or NULL */
    const char *help;
};

/* Parser state over one buffer; strings in a sample live until the next call. */
struct expfmt {
    const char *buf;
    size_t len, pos;
    unsigned line;
    enum expfmt_flavour flavour;
    int eof;       /* OpenMetrics: "# EOF" seen */
    char *scratch; /* decoded names and values of the current line */
    size_t scratch_cap;
    char fam[256], type[32];
    char *help;
};

void expfmt_init(struct expfmt *p, const char *buf, size_t len, enum expfmt_flavour f);
void expfmt_release(struct expfmt *p);
/*
 * The next sample: 1 with *s filled, 0 at the end, -1 for a bad line (err
 * says "LINE:COL: ..."; the line is skipped, the next call goes on).
 */
int expfmt_next(struct expfmt *p, struct expfmt_sample *s, char *err, size_t errlen);

/*
 * The store's type for a sample: its family's counter or gauge; a
 * histogram's or summary's _bucket, _count and _sum are counters, a
 * summary's quantiles gauges; untyped otherwise.
 */
enum metric_type expfmt_metric_type(const struct expfmt_sample *s);

/* 1 if the n bytes at s are valid UTF-8 (no overlongs or surrogates), else 0. */
int expfmt_utf8_valid(const char *s, size_t n);

#endif
