/*
 * json.h: writing JSON the way Prometheus's HTTP API does, into an sbuf:
 * strings with escapes, sample values as strings in Go's shortest form
 * ("NaN", "+Inf", "1e-07", "100000000000000000000"), and timestamps as
 * seconds with up to three decimals. Used by every JSON endpoint so their
 * answers match Prometheus's byte for byte where it matters (values).
 */
#ifndef SITREP_UTIL_JSON_H
#define SITREP_UTIL_JSON_H

#include <stdint.h>

#include "util/sbuf.h"

/* s as a JSON string literal (quotes included); invalid UTF-8 passes through. */
void json_str(struct sbuf *b, const char *s);
/* The same for n bytes. */
void json_strn(struct sbuf *b, const char *s, size_t n);
/*
 * v as Prometheus writes a sample value: a JSON string holding Go's
 * strconv.FormatFloat(v, f, -1, 64), with f = 'e' when |v| < 1e-6 or
 * |v| >= 1e21 (and v != 0), else 'f'; NaN, +Inf, -Inf spelled so.
 */
void json_value(struct sbuf *b, double v);
/* The digits of json_value without the quotes, into out (32 bytes). Returns the length. */
size_t json_format_value(double v, char *out);
/* A millisecond timestamp as seconds: 1435781451.781, 12.5, 7 (a JSON number). */
void json_time(struct sbuf *b, int64_t ms);
/* A sample as Prometheus's API writes it: [time,"value"] (json_time, json_value). */
void json_point(struct sbuf *b, int64_t ms, double v);

#endif
