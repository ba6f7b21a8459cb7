/*
 * selector.h: PromQL series selectors (`name{label="v", l2=~"re"}`, `{...}`)
 * parsed into the store's matchers. Used by the HTTP API's match[]
 * parameters; the PromQL parser proper will reuse it for vector selectors.
 *
 * Ownership: a struct query_selector owns the strings its matchers point
 * to; query_selector_release frees them.
 */
#ifndef SITREP_QUERY_SELECTOR_H
#define SITREP_QUERY_SELECTOR_H

#include <stddef.h>

#include "tsdb/tsdb.h"

#define QUERY_MAX_MATCHERS 32

struct query_selector {
    struct tsdb_matcher m[QUERY_MAX_MATCHERS];
    size_t n;
    char *strs; /* the matchers' names and values, back to back */
};

/*
 * Parse s. Returns 0 and fills sel, or -1 with err saying what is wrong and
 * at which character (1-based), e.g. "1:7: expected '=', '!=', '=~' or '!~'".
 * Label values take double quotes, single quotes or backticks, with Go's
 * escapes inside the first two.
 */
int query_parse_selector(const char *s, struct query_selector *sel, char *err, size_t errlen);
void query_selector_release(struct query_selector *sel);

#endif
