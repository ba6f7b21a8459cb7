/*
 * os.c: which distribution this is: os-release -> node_os_info and
 * node_os_version (node_exporter's "os" collector, same names and labels),
 * so every incident report can say what it happened on.
 *
 * os-release does not change at runtime, so it is parsed once (again only
 * if the rootfs option changes) and cached in the state. A garbled file
 * fails this source on every tick (logged once) without touching uname.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* os-release keys exported as node_os_info labels, in label (sorted) order. */
static const struct {
    const char *key, *label;
} os_keys[] = {
    {"BUILD_ID", "build_id"},
    {"ID", "id"},
    {"ID_LIKE", "id_like"},
    {"IMAGE_ID", "image_id"},
    {"IMAGE_VERSION", "image_version"},
    {"NAME", "name"},
    {"PRETTY_NAME", "pretty_name"},
    {"VARIANT", "variant"},
    {"VARIANT_ID", "variant_id"},
    {"VERSION", "version"},
    {"VERSION_CODENAME", "version_codename"},
    {"VERSION_ID", "version_id"},
};
#define NOS_KEYS      ARRAY_SIZE(os_keys)
#define OS_ID         1
#define OS_ID_LIKE    2
#define OS_NAME       5
#define OS_VERSION_ID 11

enum os_status { OS_UNREAD, OS_OK, OS_ABSENT, OS_GARBLED };

struct os_state {
    enum os_status os;
    char *os_rootfs; /* the rootfs os-release was read under */
    char *os_text;   /* the file, parsed in place; os_val points in */
    size_t os_cap;
    const char *os_val[NOS_KEYS]; /* "" when the key is absent */
    double os_version;            /* major.minor of VERSION_ID; 0 if none */
    char os_err[256];             /* why OS_GARBLED */
};

static void os_release(void *p)
{
    struct os_state *s = p;
    free(s->os_rootfs);
    free(s->os_text);
}

static int is_key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Parse one os-release value at p (shell-like, as os-release(5) specifies:
 * "double quoted" with backslash escapes, 'single quoted' literally, or
 * unquoted up to a blank-preceded '#' or the end of the line) and
 * NUL-terminate it in place. Returns 0, or -1 with *why set.
 */
static int parse_value(char *p, const char **why)
{
    char *w = p;
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q) {
            if (q == '"' && *p == '\\' && p[1])
                p++;
            *w++ = *p++;
        }
        if (*p != q) {
            *why = "unterminated quote";
            return -1;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '#') {
            *why = "text after the closing quote";
            return -1;
        }
        *w = '\0';
        return 0;
    }
    char *end = w; /* past the last non-blank written */
    int after_blank = 0;
    while (*p && !(*p == '#' && after_blank)) {
        after_blank = *p == ' ' || *p == '\t';
        if (*p == '\\' && p[1])
            p++;
        *w++ = *p++;
        if (!after_blank)
            end = w;
    }
    *end = '\0';
    return 0;
}

/* VERSION_ID's leading major[.minor] as a number, like node_exporter's
 * ^[0-9]+\.?[0-9]* match; 0 when it does not start with a digit. */
static double major_minor(const char *v)
{
    char num[32];
    size_t n = 0;
    while (n + 1 < sizeof(num) && v[n] >= '0' && v[n] <= '9')
        n++;
    if (n == 0)
        return 0;
    if (v[n] == '.' && n + 1 < sizeof(num)) {
        n++;
        while (n + 1 < sizeof(num) && v[n] >= '0' && v[n] <= '9')
            n++;
    }
    memcpy(num, v, n);
    num[n] = '\0';
    return strtod(num, NULL);
}

/* Parse s->os_text (a copy of the file) into s->os_val; sets s->os. */
static void parse_os_release(struct os_state *s, const char *path)
{
    for (size_t k = 0; k < NOS_KEYS; k++)
        s->os_val[k] = "";
    s->os_version = 0;
    char *cur = s->os_text, *line;
    int lineno = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        if (strncmp(line, "export ", 7) == 0)
            line += 7;
        char *key = line, *p = line;
        while (is_key_char(*p))
            p++;
        const char *why = NULL;
        if (p == key || *p != '=')
            why = "want KEY=value";
        else
            *p++ = '\0';
        if (!why && parse_value(p, &why) == 0) {
            for (size_t k = 0; k < NOS_KEYS; k++)
                if (strcmp(key, os_keys[k].key) == 0)
                    s->os_val[k] = p;
            continue;
        }
        snprintf(s->os_err, sizeof(s->os_err), "%.200s:%d: %s", path, lineno, why);
        s->os = OS_GARBLED;
        return;
    }
    s->os_version = major_minor(s->os_val[OS_VERSION_ID]);
    s->os = OS_OK;
}

/*
 * Read and parse os-release below ctx->opts->rootfs: /etc/os-release, else
 * /usr/lib/os-release (the fallback os-release(5) prescribes). Runs once.
 */
static void load_os_release(struct os_state *s, struct collect_ctx *ctx)
{
    static const char *const files[] = {"/etc/os-release", "/usr/lib/os-release"};
    free(s->os_rootfs);
    s->os_rootfs = xstrdup(ctx->opts->rootfs);
    s->os = OS_ABSENT;
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s%s", ctx->opts->rootfs, files[i]) >=
            sizeof(path))
            return;
        long n = collect__read(ctx, AT_FDCWD, path);
        if (n == -ENOENT || n == -ENOTDIR)
            continue;
        if (n < 0) {
            snprintf(s->os_err, sizeof(s->os_err), "%.200s", ctx->err);
            s->os = OS_GARBLED;
            return;
        }
        void *g = s->os_text;
        util_grow(&g, &s->os_cap, (size_t)n + 1, 1);
        s->os_text = g;
        memcpy(s->os_text, ctx->buf, (size_t)n + 1);
        parse_os_release(s, path);
        return;
    }
}

static void emit_os(struct os_state *s, struct collect_ctx *ctx)
{
    struct metric_label l[NOS_KEYS];
    for (size_t k = 0; k < NOS_KEYS; k++)
        l[k] = (struct metric_label){os_keys[k].label, s->os_val[k]};
    metric_fam(ctx->out, "node_os_info",
               "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
               "image_version, name, pretty_name, variant, variant_id, version, "
               "version_codename, version_id.",
               METRIC_GAUGE);
    metric_add(ctx->out, 1, NOS_KEYS, l);
    if (s->os_version > 0) {
        const struct metric_label v[] = {
            {"id", s->os_val[OS_ID]},
            {"id_like", s->os_val[OS_ID_LIKE]},
            {"name", s->os_val[OS_NAME]},
        };
        metric_fam(ctx->out, "node_os_version",
                   "Metric containing the major.minor part of the OS version.", METRIC_GAUGE);
        metric_add(ctx->out, s->os_version, ARRAY_SIZE(v), v);
    }
}

static int os_collect(void *p, struct collect_ctx *ctx)
{
    struct os_state *s = p;
    if (s->os == OS_UNREAD || strcmp(s->os_rootfs, ctx->opts->rootfs) != 0)
        load_os_release(s, ctx);
    if (s->os == OS_GARBLED)
        return collect__fail(ctx, "%s", s->os_err);
    if (s->os == OS_ABSENT) {
        snprintf(ctx->err, sizeof(ctx->err), "%s/etc/os-release: absent", ctx->opts->rootfs);
        return COLLECT_MISSING;
    }
    emit_os(s, ctx);
    return COLLECT_OK;
}

const struct collect_source collect__src_os = {
    .name = "os",
    .flags = COLLECT_OWN_ROOT,
    .state_size = sizeof(struct os_state),
    .collect = os_collect,
    .release = os_release,
};
