/*
 * exec_internal.h: what the files of src/exec/ share: one running command
 * (child.c). Only src/exec/ includes it.
 */
#ifndef SITREP_EXEC_INTERNAL_H
#define SITREP_EXEC_INTERNAL_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "exec/exec.h"
#include "util/sbuf.h"

enum exec__end { EXEC__RUNNING, EXEC__DONE, EXEC__TIMEOUT, EXEC__OVER_LIMIT };

/* A command started by exec__child_start; the caller owns it until exec__child_release. */
struct exec__child {
    pid_t pid;          /* 0 once reaped */
    int out, err;       /* read ends of stdout and stderr; -1 once closed */
    struct sbuf output; /* stdout, capped at the job's output_limit */
    char errhead[256];  /* the start of stderr, for the log */
    size_t nerrhead;
    int64_t deadline_ns; /* monotonic */
    enum exec__end end;  /* EXEC__RUNNING until it exited (or was killed) and was reaped */
    int status;          /* waitpid's, once reaped */
};

/*
 * Start argv (argv[0] looked up in PATH) in its own process group, stdin
 * from /dev/null, no other descriptors inherited, signals at their
 * defaults. 0, or -1 with err (nothing to release).
 */
int exec__child_start(struct exec__child *c, char *const argv[], long long output_limit,
                      int64_t deadline_ns, char *err, size_t errlen);
/* The child's open pipes into pf (at most 2). Returns how many. */
size_t exec__child_fds(const struct exec__child *c, struct pollfd *pf);
/*
 * Read what the pipes hold, kill the process group past the deadline or
 * the output limit, reap the child once its pipes are closed. Returns 1
 * once c->end is no longer EXEC__RUNNING.
 */
int exec__child_step(struct exec__child *c);
/* Kill (if still running), reap, close and free. */
void exec__child_release(struct exec__child *c);

#endif
