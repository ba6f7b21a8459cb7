/*
 * config.h: sitrep's configuration: built-in defaults, overridden by an
 * optional YAML file, overridden by command-line flags. Every key is
 * optional. Errors name the place as "file:line:col: message".
 *
 * Ownership: a struct config owns all its strings; config_release frees them.
 */
#ifndef SITREP_CONFIG_H
#define SITREP_CONFIG_H

#include <stddef.h>

#include "util/sbuf.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:9797"
#define CONFIG_DEFAULT_DATA   "./sitrep-data"

struct config_collect {
    int interval_s;    /* 1 */
    int top_processes; /* 10; 0 turns the per-process series off */
    char *proc_root;   /* "/proc" */
    char *sys_root;    /* "/sys" */
    char *rootfs;      /* "" */
    char **disable;    /* source names */
    size_t ndisable;
};

struct config {
    char *path;       /* file it was loaded from, or NULL */
    char *listen;     /* ADDR:PORT */
    char *data_dir;   /* where the store and state live */
    char *log_level;  /* debug|info|warn|error */
    char *http_token; /* bearer token for state-changing requests; NULL if none */
    struct config_collect collect;
};

/* Fill cfg with the built-in defaults. */
void config_defaults(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Load `path` over the defaults already in cfg. On error returns -1 and
 * appends one "file:line:col: message\n" per problem to errors; cfg then
 * holds defaults plus whatever parsed (callers discard it).
 */
int config_load(struct config *cfg, const char *path, struct sbuf *errors);

/*
 * Split "host:port" (IPv6 as "[::1]:9797"). Returns 0 and fills host
 * (NUL-terminated, brackets removed) and port, or -1 if malformed.
 */
int config_parse_listen(const char *s, char *host, size_t hostcap, int *port);
/* Parse a duration ("15s", "500ms", "2m", "1h", "1d", or plain seconds) to ms. */
int config_parse_duration_ms(const char *s, long long *ms);

#endif
