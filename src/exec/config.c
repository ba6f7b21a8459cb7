/*
 * config.c: the `exec:` list of sitrep's config (exec.h): parsing from a
 * libyaml node with file:line:col errors, release and comparison.
 */
#include "exec/exec.h"
#include "util/util.h"
#include "util/yamlcfg.h"
#include "util/banned.h"

#include <stdlib.h>
#include <string.h>

void exec_config_init(struct exec_config *c)
{
    memset(c, 0, sizeof(*c));
}

static void job_release(struct exec_job *j)
{
    free(j->job);
    for (size_t i = 0; i < j->argc; i++)
        free(j->argv[i]);
    free(j->argv);
}

void exec_config_release(struct exec_config *c)
{
    for (size_t i = 0; i < c->njobs; i++)
        job_release(&c->jobs[i]);
    free(c->jobs);
    memset(c, 0, sizeof(*c));
}

int exec_config_equal(const struct exec_config *a, const struct exec_config *b)
{
    if (a->njobs != b->njobs)
        return 0;
    for (size_t i = 0; i < a->njobs; i++) {
        const struct exec_job *x = &a->jobs[i], *y = &b->jobs[i];
        if (strcmp(x->job, y->job) != 0 || x->argc != y->argc || x->interval_ms != y->interval_ms ||
            x->timeout_ms != y->timeout_ms || x->output_limit != y->output_limit)
            return 0;
        for (size_t k = 0; k < x->argc; k++)
            if (strcmp(x->argv[k], y->argv[k]) != 0)
                return 0;
    }
    return 1;
}

/* "cmd  arg1 arg2" -> argv, split on spaces and tabs (no quoting, no shell). */
static void split_words(const char *s, char ***argv, size_t *argc)
{
    while (*s) {
        s += strspn(s, " \t");
        size_t n = strcspn(s, " \t");
        if (!n)
            break;
        *argv = xrealloc(*argv, (*argc + 1) * sizeof(**argv));
        (*argv)[(*argc)++] = xstrndup(s, n);
        s += n;
    }
}

static void on_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct exec_job *j = ctx;
    long long ll;
    if (strcmp(key, "job") == 0) {
        if (yamlcfg_str(w, v, "exec.job", &j->job) == 0 && !*j->job)
            yamlcfg_err(w, v, "exec.job: must not be empty");
    } else if (strcmp(key, "command") == 0) {
        const char *s = yamlcfg_scalar(v);
        if (s)
            split_words(s, &j->argv, &j->argc);
        else
            yamlcfg_str_list(w, v, "exec.command", &j->argv, &j->argc);
        if (!j->argc)
            yamlcfg_err(w, v, "exec.command: want a program and its arguments");
        else if (j->argc > EXEC_MAX_ARGS)
            yamlcfg_err(w, v, "exec.command: at most %d arguments", EXEC_MAX_ARGS);
        else if (!j->argv[0][0])
            yamlcfg_err(w, v, "exec.command: the program name is empty");
    } else if (strcmp(key, "interval") == 0) {
        yamlcfg_duration(w, v, "exec.interval", 1000, 24LL * 3600 * 1000, &j->interval_ms);
    } else if (strcmp(key, "timeout") == 0) {
        yamlcfg_duration(w, v, "exec.timeout", 10, 24LL * 3600 * 1000, &j->timeout_ms);
    } else if (strcmp(key, "output_limit") == 0) {
        if (yamlcfg_size(w, v, "exec.output_limit", 1024, 256LL << 20, &ll) == 0)
            j->output_limit = ll;
    } else {
        yamlcfg_err(w, k,
                    "exec: unknown key '%s' (known: job, command, interval, timeout, "
                    "output_limit)",
                    key);
    }
}

int exec_config_parse_node(struct exec_config *c, const char *file, struct yaml_document_s *doc,
                           struct yaml_node_s *node, struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    yaml_node_item_t *items;
    size_t n;
    if (!node || yamlcfg_seq(&w, node, "exec", &items, &n) < 0)
        return w.nerr ? -1 : 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *jn = yamlcfg_node(&w, items[i]);
        c->jobs = xrealloc(c->jobs, (c->njobs + 1) * sizeof(*c->jobs));
        struct exec_job *j = &c->jobs[c->njobs++];
        memset(j, 0, sizeof(*j));
        j->interval_ms = EXEC_DEFAULT_INTERVAL_MS;
        j->timeout_ms = -1;
        j->output_limit = EXEC_DEFAULT_OUTPUT_LIMIT;
        if (yamlcfg_each_key(&w, jn, "exec[]", on_key, j) < 0)
            continue;
        if (j->timeout_ms < 0)
            j->timeout_ms =
                j->interval_ms < EXEC_DEFAULT_TIMEOUT_MS ? j->interval_ms : EXEC_DEFAULT_TIMEOUT_MS;
        else if (j->timeout_ms > j->interval_ms)
            yamlcfg_err(&w, jn, "exec: timeout is longer than interval");
        if (!j->job)
            yamlcfg_err(&w, jn, "exec: each entry needs job: NAME");
        if (!j->argc)
            yamlcfg_err(&w, jn, "exec: each entry needs command: [program, arg, ...]");
        /* argv ends with NULL for posix_spawn */
        j->argv = xrealloc(j->argv, (j->argc + 1) * sizeof(*j->argv));
        j->argv[j->argc] = NULL;
        for (size_t k = 0; j->job && k + 1 < c->njobs; k++)
            if (c->jobs[k].job && strcmp(c->jobs[k].job, j->job) == 0)
                yamlcfg_err(&w, jn, "exec: job '%s' is given twice", j->job);
    }
    return w.nerr ? -1 : 0;
}
