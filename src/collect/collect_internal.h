/*
 * collect_internal.h: what a collection source sees. Each source is one file
 * (stat.c, meminfo.c, ...) exporting a struct collect_source; collector.c
 * lists them in one table, runs them every tick and handles their failures:
 * a source whose files are missing is logged once and disabled, a source
 * that fails to parse is counted and logged once per failure streak. Either
 * way, whatever the source emitted in that tick is dropped, so a batch never
 * holds half of a garbled file.
 */
#ifndef SITREP_COLLECT_INTERNAL_H
#define SITREP_COLLECT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "collect/collect.h"
#include "metric/metric.h"

/* A file collect__read keeps open (see struct collect_ctx). */
#define KEPT_PATH 80
struct collect__kept {
    int dirfd, fd;
    char path[KEPT_PATH];
};

/* Return values of a source's collect function. */
#define COLLECT_OK      0
#define COLLECT_MISSING -1 /* the source does not exist here: disable it */
#define COLLECT_FAILED  -2 /* unreadable or garbled this tick: count, go on */

/* Hard cap on one /proc or /sys file: a bigger one is an error, not a hog. */
#define COLLECT_MAX_FILE (16u << 20)

struct collect_ctx {
    int proc_fd; /* directory fd of proc_root */
    int sys_fd;  /* directory fd of sys_root, or -1 */
    const struct collect_opts *opts;
    struct metric_buf *out; /* the batch being built */
    int64_t ts_ms;          /* this tick's timestamp */
    char *buf;              /* shared read buffer, see collect__read() */
    size_t buf_cap;
    char err[512]; /* a failing source says what and where here */
    /*
     * Files collect__read keeps open between ticks and re-reads from offset
     * 0: only below a real procfs (keep_proc) or sysfs (keep_sys) root,
     * where such a read regenerates the content. Below any other root (test
     * fixtures) a rewritten file may be a new inode, so every read reopens.
     */
    int keep_proc, keep_sys;
    struct collect__kept *kept; /* owned; closed by collect__forget() */
    size_t nkept;
};

/* collect_source.flags */
#define COLLECT_OWN_ROOT 1 /* reads its own files, not below proc_root (self) */

struct collect_source {
    const char *name;
    unsigned flags;
    size_t state_size; /* bytes of zeroed private state the framework allocates */
    /* One tick. Emits into ctx->out. Returns COLLECT_OK, _MISSING or _FAILED. */
    int (*collect)(void *state, struct collect_ctx *ctx);
    /* Frees what the state points to (optional). */
    void (*release)(void *state);
    /*
     * Sets the state up from the options, once, when the collector is made
     * (optional). Returns 0, or -1 with err filled: the source is then
     * logged and switched off.
     */
    int (*init)(void *state, const struct collect_opts *opts, char *err, size_t errlen);
};

/*
 * Read dirfd/path whole into ctx->buf, NUL-terminated. Returns the length,
 * or -errno (and fills ctx->err). The buffer stays valid until the next call.
 */
long collect__read(struct collect_ctx *ctx, int dirfd, const char *path);
/* Close the files collect__read kept open. */
void collect__forget(struct collect_ctx *ctx);
/*
 * Like collect__read into a caller buffer of size cap (truncates silently):
 * _into keeps the file open as collect__read does, _small never does (for
 * per-process files, whose paths come and go).
 */
long collect__read_into(struct collect_ctx *ctx, int dirfd, const char *path, char *buf,
                        size_t cap);
long collect__read_small(int dirfd, const char *path, char *buf, size_t cap);

/* Record why the source failed ("file:line: message"); returns COLLECT_FAILED. */
int collect__fail(struct collect_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Map a collect__read error: ENOENT/EACCES -> COLLECT_MISSING, else _FAILED. */
int collect__read_error(long err);

/* Cut the next line off *cursor (in place); NULL at the end. */
char *collect__line(char **cursor);
/* Split s in place on blanks into at most max fields; returns the count. */
int collect__fields(char *s, char **fields, int max);
/* Cut the next blank-separated token off *cursor (in place); NULL at the end. */
char *collect__token(char **cursor);
/*
 * Squeeze s in place: runs of blanks become one space, leading and trailing
 * blanks go (what strings.Fields + Join give node_exporter's labels). Returns s.
 */
char *collect__squeeze(char *s);
/* Parse a whole unsigned/signed decimal or a double; 0 on success, -1 if not. */
int collect__u64(const char *s, uint64_t *out);
int collect__i64(const char *s, int64_t *out);
int collect__f64(const char *s, double *out);
/* Parse a whole hexadecimal number (at most 16 digits); 0 or -1. */
int collect__hex(const char *s, uint64_t *out);
/*
 * Read a file below proc_root holding one decimal number (a sysctl).
 * Returns COLLECT_OK, COLLECT_MISSING if absent, or COLLECT_FAILED; ctx->err
 * says which file and why.
 */
int collect__read_u64(struct collect_ctx *ctx, const char *path, uint64_t *out);

/*
 * The CPU columns of a per-CPU table's header line ("CPU0 CPU1 CPU3", in
 * /proc/interrupts and /proc/softirqs). The ids are the kernel's CPU
 * numbers, which skip offline CPUs in /proc/interrupts.
 */
struct collect_cpus {
    char (*id)[12]; /* "0", "1", "3", NUL-terminated; grows to the CPU count once */
    size_t n, cap;
};

/*
 * Parse the header line (in place) into c. Returns 0, or -1 if there is no
 * column or one is not CPU<n>, with *why (static) saying which.
 */
int collect__cpus_parse(struct collect_cpus *c, char *line, const char **why);
void collect__cpus_release(struct collect_cpus *c);
/*
 * Read a per-CPU table below proc_root (path "interrupts", "softirqs") into
 * ctx->buf and parse its header into cpus. Returns COLLECT_OK with *cursor
 * at the first row (for collect__line), or COLLECT_MISSING / COLLECT_FAILED
 * with ctx->err saying why and where.
 */
int collect__read_cpu_table(struct collect_ctx *ctx, const char *path, struct collect_cpus *cpus,
                            char **cursor);
/*
 * Split a table row "  NAME: rest" in place at its first ':'. *name is NAME
 * without the leading blanks, *rest what follows the ':'. Returns 0, or -1 if
 * there is no ':' or NAME is empty or holds a blank.
 */
int collect__row_name(char *line, char **name, char **rest);

/* The fields of a /proc/<pid>/stat line (proc(5)) that sources use. */
struct collect_pidstat {
    const char *comm; /* field 2 without its parentheses: points into the
                         parsed buffer, not NUL-terminated, may hold anything */
    size_t comm_len;
    char state;           /* field 3, a letter */
    uint64_t flags;       /* field 9, PF_* (PF_KTHREAD 0x00200000: a kernel thread) */
    uint64_t minflt;      /* field 10, faults served without disk IO */
    uint64_t majflt;      /* field 12, faults that read from disk */
    uint64_t utime;       /* field 14, clock ticks */
    uint64_t stime;       /* field 15, clock ticks */
    uint64_t num_threads; /* field 20 */
    uint64_t starttime;   /* field 22, clock ticks after boot */
    uint64_t vsize;       /* field 23, bytes */
    uint64_t rss_pages;   /* field 24; a negative count reads as 0 */
};

/*
 * Parse a NUL-terminated /proc/<pid>/stat line in place (blanks after comm
 * become NULs). comm may hold blanks and ')', so it runs from the first '('
 * to the last ')'. Returns 0, or -1 if the line is garbled or cut short, with
 * *why (if why is not NULL) set to a static description; *out is then
 * unspecified. Reads nothing past buf's NUL.
 */
int collect__parse_pidstat(char *buf, struct collect_pidstat *out, const char **why);

/*
 * A field selection (fieldsel.c): which named fields of a statistics file a
 * source keeps. NULL stands for "every field" and costs nothing.
 */
struct collect__fieldsel;

/*
 * Compile re into *out (NULL re: *out = NULL, every field). The regex must
 * match a whole name. Returns 0, or -1 with err set to "bad regex at offset
 * N: why" and *offset to N. The caller frees *out with collect__fieldsel_free.
 */
int collect__fieldsel_new(const char *re, struct collect__fieldsel **out, char *err, size_t errlen,
                          size_t *offset);
void collect__fieldsel_free(struct collect__fieldsel *s);
/*
 * 1 if the field name[0..len) is kept, 0 if dropped. The answer is cached
 * per name, so the regex runs once per distinct name, not once per tick.
 * Allocates only for a name not seen before.
 */
int collect__fieldsel_keep(struct collect__fieldsel *s, const char *name, size_t len);
/* How many times the regex has run (for tests of the cache). */
uint64_t collect__fieldsel_matches(const struct collect__fieldsel *s);

/* Root qdiscs the qdisc source keeps from one dump (qdisc.c). */
#define COLLECT_QDISC_MAX 256

/* One root qdisc (or, while parsing, one class) from an rtnetlink dump. */
struct collect_qdisc {
    int32_t ifindex;
    uint32_t handle, parent; /* tcm_handle, tcm_parent */
    char kind[16];           /* TCA_KIND, NUL-terminated */
    char device[16];         /* filled from ifindex after the dump (IFNAMSIZ) */
    uint64_t bytes, packets, drops, requeues, overlimits, qlen, backlog;
    uint64_t rate; /* bytes/s the qdisc shapes to (tbf, netem, htb classes); 0: none known */
};

/* What a dump has delivered so far. */
struct collect_qdisc_dump {
    uint32_t seq;   /* replies to other sequence numbers are skipped */
    int done;       /* NLMSG_DONE seen */
    int error;      /* the errno of an NLMSG_ERROR (or of a failing NLMSG_DONE) */
    int classes;    /* a class dump: only RTM_NEWTCLASS counts (else only RTM_NEWQDISC) */
    size_t n;       /* roots in q, in dump order, one per ifindex */
    size_t skipped; /* roots past COLLECT_QDISC_MAX */
    struct collect_qdisc q[COLLECT_QDISC_MAX];
};

/*
 * Expect the replies to request seq. keep = 0 starts a qdisc dump (forgets
 * the roots); keep = 1 starts a class dump that adds htb classes' rates to
 * the roots already there. Each dump reads only its own message type, so a
 * stray qdisc message in a class dump cannot add roots (nor the reverse).
 */
void collect__qdisc_begin(struct collect_qdisc_dump *d, uint32_t seq, int keep);
/*
 * Parse one recv's worth of netlink messages, buf[0..len), into d: roots
 * from RTM_NEWQDISC (tcm_parent TC_H_ROOT), htb top-level class limits from
 * RTM_NEWTCLASS. Returns 1 once NLMSG_DONE is read (what follows it is
 * ignored), 0 if the dump goes on, or -1 with *why (static) set when a length
 * or a field is out of bounds, or the kernel answered with an error (d->error).
 * Never reads outside buf.
 */
int collect__qdisc_feed(struct collect_qdisc_dump *d, const void *buf, size_t len,
                        const char **why);

extern const struct collect_source collect__src_stat;
extern const struct collect_source collect__src_loadavg;
extern const struct collect_source collect__src_meminfo;
extern const struct collect_source collect__src_vmstat;
extern const struct collect_source collect__src_pressure;
extern const struct collect_source collect__src_vfs;
extern const struct collect_source collect__src_netdev;
extern const struct collect_source collect__src_netclass;
extern const struct collect_source collect__src_diskstats;
extern const struct collect_source collect__src_filesystem;
extern const struct collect_source collect__src_netstat;
extern const struct collect_source collect__src_sockstat;
extern const struct collect_source collect__src_processes;
extern const struct collect_source collect__src_softnet;
extern const struct collect_source collect__src_conntrack;
extern const struct collect_source collect__src_entropy;
extern const struct collect_source collect__src_timex;
extern const struct collect_source collect__src_uname;
extern const struct collect_source collect__src_os;
extern const struct collect_source collect__src_qdisc;
extern const struct collect_source collect__src_slabinfo;
extern const struct collect_source collect__src_self;
extern const struct collect_source collect__src_interrupts;
extern const struct collect_source collect__src_softirqs;
extern const struct collect_source collect__src_schedstat;

#endif
