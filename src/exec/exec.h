/*
 * exec.h: exec sources: a command run every interval whose standard output
 * is Prometheus text exposition (0.0.4), parsed with ingest/expfmt.h, its
 * samples labelled job=<name> and stored. No shell: the command is an argv
 * list (or a string split on spaces and tabs, no quoting); write
 * [sh, -c, "..."] for a shell. A run fails whole (no samples kept) on a
 * spawn error, a non-zero exit or a signal, the timeout (its whole process
 * group is killed), output over output_limit, or any malformed line (its
 * line number is logged). Series: sitrep_exec_success{job},
 * sitrep_exec_duration_seconds{job}, sitrep_exec_samples{job},
 * sitrep_exec_exit_code{job}, sitrep_exec_errors_total{job,reason}; names
 * and semantics in docs/SIGNALS.md.
 *
 * Threads: exec_start() creates one thread that starts the commands when
 * due and reads their pipes with poll(), so a slow command never delays
 * another (nor any other source). Without the thread (tests)
 * exec_run_once() runs every command once and waits.
 */
#ifndef SITREP_EXEC_H
#define SITREP_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

struct yaml_document_s;
struct yaml_node_s;

#define EXEC_DEFAULT_INTERVAL_MS  10000
#define EXEC_DEFAULT_TIMEOUT_MS   5000
#define EXEC_DEFAULT_OUTPUT_LIMIT (4LL << 20) /* bytes of stdout */
#define EXEC_MAX_ARGS             64

/* One `exec:` entry. The config owns it; exec_config_release frees it. */
struct exec_job {
    char *job;                         /* the job label; unique */
    char **argv;                       /* argc strings and a NULL; argv[0] looked up in PATH */
    size_t argc;                       /* >= 1 */
    long long interval_ms, timeout_ms; /* 10 s, 5 s; timeout <= interval */
    long long output_limit;            /* 4 MiB */
};

struct exec_config {
    struct exec_job *jobs; /* owned */
    size_t njobs;
};

void exec_config_init(struct exec_config *c);
void exec_config_release(struct exec_config *c);
int exec_config_equal(const struct exec_config *a, const struct exec_config *b);
/*
 * Read the `exec:` list `node` into c (appending). Per entry: job, command
 * (a list, or a string split on whitespace), interval, timeout,
 * output_limit. On error returns -1 and appends "file:line:col: message\n"
 * per problem to errors.
 */
int exec_config_parse_node(struct exec_config *c, const char *file, struct yaml_document_s *doc,
                           struct yaml_node_s *node, struct sbuf *errors);

struct exec_opts {
    const struct exec_config *config; /* copied */
    /* Called on the exec thread with each run's batch (it stays the runner's). */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct exec;

/* Create a runner (no thread, nothing started). Never NULL. */
struct exec *exec_new(const struct exec_opts *opts);
/* Stop the thread, kill the commands still running, free everything. NULL is fine. */
void exec_free(struct exec *e);
/* Start the thread (a no-op with no jobs). 0 or -1 (logged). */
int exec_start(struct exec *e);
void exec_stop(struct exec *e);
/* Without the thread: run every command now, together, and wait; one sink call each. */
void exec_run_once(struct exec *e);

#endif
