/*
 * testutil.h: helpers for unit tests (included by *_test.c only): fixture
 * paths, lookups of samples and families in a metric_buf by name and label
 * text, and collectors that run only the sources under test.
 */
#ifndef SITREP_TESTUTIL_H
#define SITREP_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "collect/collect.h"
#include "metric/metric.h"
#include "util/log.h"
#include "util/util.h"

#include <unistd.h>

/*
 * Path of a fixture below $SITREP_FIXTURES (set by ctest). Static buffer:
 * valid until the next call, so copy it before calling fixture() again.
 */
static inline const char *fixture(const char *rel)
{
    static char path[4096];
    const char *root = getenv("SITREP_FIXTURES");
    snprintf(path, sizeof(path), "%s/%s", root ? root : SITREP_FIXTURES_DIR, rel);
    return path;
}

/* Render a sample's labels as `a="x",b="y"` (no escaping; tests only). */
static inline void tu_labels(const struct metric_buf *b, const struct metric_sample *s, char *out,
                             size_t cap)
{
    const char *p = metric_str(b, s->labels);
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < s->nlabels; i++) {
        const char *k = p, *v = p + strlen(p) + 1;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s=\"%s\"", i ? "," : "", k, v);
        p = v + strlen(v) + 1;
    }
}

/*
 * Find the sample of family `name` whose labels render exactly as `labels`
 * ("" for none). Returns 1 and stores the value, or 0 if absent.
 */
static inline int tu_find(const struct metric_buf *b, const char *name, const char *labels,
                          double *value)
{
    char buf[1024];
    for (size_t i = 0; i < b->nfams; i++) {
        const struct metric_fam_rec *f = &b->fams[i];
        if (strcmp(metric_str(b, f->name), name) != 0)
            continue;
        for (uint32_t k = 0; k < f->count; k++) {
            const struct metric_sample *s = &b->samples[f->first + k];
            tu_labels(b, s, buf, sizeof(buf));
            if (strcmp(buf, labels) == 0) {
                if (value)
                    *value = s->value;
                return 1;
            }
        }
    }
    return 0;
}

/* Number of samples of family `name`. */
static inline size_t tu_count(const struct metric_buf *b, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nfams; i++)
        if (strcmp(metric_str(b, b->fams[i].name), name) == 0)
            n += b->fams[i].count;
    return n;
}

/* The value of the sample, failing the test if it is absent. */
static inline double tu_value(const struct metric_buf *b, const char *name, const char *labels)
{
    double v = 0;
    if (!tu_find(b, name, labels, &v))
        fail_msg("no sample %s{%s}", name, labels);
    return v;
}

/* Samples in all families whose name starts with prefix. */
static inline size_t tu_count_prefix(const struct metric_buf *b, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nfams; i++)
        if (strncmp(metric_str(b, b->fams[i].name), prefix, strlen(prefix)) == 0)
            n += b->fams[i].count;
    return n;
}

/* The first run of family `name`, or NULL if the batch has none. */
static inline const struct metric_fam_rec *tu_fam(const struct metric_buf *b, const char *name)
{
    for (size_t i = 0; i < b->nfams; i++)
        if (strcmp(metric_str(b, b->fams[i].name), name) == 0)
            return &b->fams[i];
    return NULL;
}

/* Like tu_fam(), but failing the test if the family is absent. Never NULL. */
static inline const struct metric_fam_rec *tu_fam_must(const struct metric_buf *b, const char *name)
{
    const struct metric_fam_rec *f = tu_fam(b, name);
    if (!f)
        fail_msg("no family %s", name);
    return f;
}

/* Type of family `name`, failing the test if it is absent. */
static inline enum metric_type tu_type(const struct metric_buf *b, const char *name)
{
    return tu_fam_must(b, name)->type;
}

/* Help text of family `name`, failing the test if it is absent. */
static inline const char *tu_help(const struct metric_buf *b, const char *name)
{
    return metric_str(b, tu_fam_must(b, name)->help);
}

/* Assert that every family whose name starts with prefix has type `type`. */
static inline void tu_assert_prefix_type(const struct metric_buf *b, const char *prefix,
                                         enum metric_type type)
{
    for (size_t i = 0; i < b->nfams; i++)
        if (strncmp(metric_str(b, b->fams[i].name), prefix, strlen(prefix)) == 0)
            assert_int_equal(b->fams[i].type, type);
}

/* The one unsigned decimal at the start of a fixture file (a sysctl). */
static inline double tu_fixture_number(const char *rel)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    unsigned long long v;
    assert_int_equal(fscanf(f, "%llu", &v), 1);
    fclose(f);
    return (double)v;
}

/* Replace the file at path with text, failing the test if it cannot. */
static inline void tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/*
 * Create a collector from a copy of *base (NULL: all defaults) with every
 * source disabled but the nkeep names in keep (base->disabled is ignored),
 * run one cycle at ts_ms 1000 and return it: collect_last() then holds that
 * cycle's batch. The caller frees it with collect_free(). The paths in base
 * need to live only during the call (collect_new() copies them, and nothing
 * here calls fixture()). Fails the test if a name in keep is no source.
 */
static inline struct collect *tu_collect_only(const struct collect_opts *base,
                                              const char *const *keep, size_t nkeep)
{
    size_t n, nd = 0, nkept = 0;
    const char *const *names = collect_source_names(&n);
    const char *disabled[64];
    assert_true(n <= ARRAY_SIZE(disabled));
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nkeep && strcmp(names[i], keep[k]) != 0)
            k++;
        if (k < nkeep)
            nkept++;
        else
            disabled[nd++] = names[i];
    }
    assert_int_equal(nkept, nkeep);
    struct collect_opts o = base ? *base : (struct collect_opts){0};
    o.disabled = disabled;
    o.ndisabled = nd;
    struct collect *c = collect_new(&o);
    collect_once(c, 1000);
    return c;
}

/* tu_collect_only() of the one source `source`, reading proc_root. */
static inline struct collect *tu_collect_source(const char *proc_root, const char *source)
{
    struct collect_opts o = {.proc_root = proc_root};
    return tu_collect_only(&o, &source, 1);
}

/*
 * tu_collect_only() with proc_root set to fixture(proc_rel). base's
 * sys_root and rootfs are copied first, so they may be fixture()'s buffer.
 */
static inline struct collect *tu_collect_only_fixture(const char *proc_rel,
                                                      const struct collect_opts *base,
                                                      const char *const *keep, size_t nkeep)
{
    char sys[4096], rootfs[4096];
    struct collect_opts o = base ? *base : (struct collect_opts){0};
    if (o.sys_root) {
        snprintf(sys, sizeof(sys), "%s", o.sys_root);
        o.sys_root = sys;
    }
    if (o.rootfs) {
        snprintf(rootfs, sizeof(rootfs), "%s", o.rootfs);
        o.rootfs = rootfs;
    }
    o.proc_root = fixture(proc_rel);
    return tu_collect_only(&o, keep, nkeep);
}

/*
 * tu_collect_source() with the log (stderr, at warning level) captured into
 * log (NUL-terminated, cut at cap), for checking what a failing source said.
 * Leaves the log level at LOG_ERROR.
 */
static inline struct collect *tu_collect_source_logged(const char *proc_root, const char *source,
                                                       char *log, size_t cap)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    dup2(fileno(f), 2);
    log_set_level(LOG_WARN);
    struct collect *c = tu_collect_source(proc_root, source);
    log_set_level(LOG_ERROR);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(log, 1, cap - 1, f);
    log[n] = '\0';
    fclose(f);
    return c;
}

/* sitrep_collector_success{collector="source"}, failing the test if absent. */
static inline double tu_source_success(const struct metric_buf *b, const char *source)
{
    char l[128];
    snprintf(l, sizeof(l), "collector=\"%s\"", source);
    return tu_value(b, "sitrep_collector_success", l);
}

/* sitrep_collector_errors_total{collector="source"}, failing the test if absent. */
static inline double tu_source_errors(const struct metric_buf *b, const char *source)
{
    char l[128];
    snprintf(l, sizeof(l), "collector=\"%s\"", source);
    return tu_value(b, "sitrep_collector_errors_total", l);
}

/*
 * Assert that `source` failed in the cycle behind b and the batch survived:
 * sitrep_collector_success is 0, sitrep_collector_errors_total equals
 * errors_total, no family starting with family_prefix has samples (nothing
 * half-parsed leaked; NULL skips this check), and the collector's own
 * sitrep_collect_ticks_total is still there.
 */
static inline void tu_assert_source_failed(const struct metric_buf *b, const char *source,
                                           unsigned errors_total, const char *family_prefix)
{
    assert_int_equal(tu_source_success(b, source), 0);
    assert_int_equal(tu_source_errors(b, source), errors_total);
    if (family_prefix)
        assert_int_equal(tu_count_prefix(b, family_prefix), 0);
    assert_true(tu_find(b, "sitrep_collect_ticks_total", "", NULL));
}

/*
 * A fresh directory under /tmp named after `what` (static buffer: copy it
 * before the next call). Remove it with tu_rmrf().
 */
static inline char *tu_tmpdir(const char *what)
{
    static char dir[128];
    snprintf(dir, sizeof(dir), "/tmp/sitrep-%s-XXXXXX", what);
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* rm -rf dir (a path tu_tmpdir made). */
static inline void tu_rmrf(const char *dir)
{
    char cmd[256];
    assert_true(strncmp(dir, "/tmp/sitrep-", 12) == 0); /* never anything else */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/*
 * A fresh scratch proc root holding `file` (a path below it, no folders)
 * with text. dir and path, of TU_PATH_MAX bytes each, receive the root and
 * the file's path; remove it with tu_rmrf(dir).
 */
#define TU_PATH_MAX 256
static inline void tu_scratch_proc(const char *file, const char *text, char *dir, char *path)
{
    snprintf(dir, TU_PATH_MAX, "%s", tu_tmpdir(file));
    snprintf(path, TU_PATH_MAX, "%s/%s", dir, file);
    tu_write_file(path, text);
}

/*
 * Assert that `source` refuses text as its proc file `file`: it fails, is
 * counted once, leaves no family starting with family_prefix, and its
 * logged reason names "<root>/<file>:<line>: " (line 0: "<root>/<file>: ").
 */
static inline void tu_assert_rejects(const char *source, const char *file, const char *text,
                                     int line, const char *family_prefix)
{
    char dir[TU_PATH_MAX], path[TU_PATH_MAX], log[4096], want[TU_PATH_MAX + 64];
    tu_scratch_proc(file, text, dir, path);
    struct collect *c = tu_collect_source_logged(dir, source, log, sizeof(log));
    tu_assert_source_failed(collect_last(c), source, 1, family_prefix);
    collect_free(c);
    if (line)
        snprintf(want, sizeof(want), "%s:%d: ", path, line);
    else
        snprintf(want, sizeof(want), "%s: ", path);
    if (!strstr(log, want))
        fail_msg("want '%s' in the log, got: %s", want, log);
    tu_rmrf(dir);
}

#endif
