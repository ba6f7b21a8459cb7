/*
 * child.c: one running command of an exec source: started with
 * posix_spawnp in its own process group, its stdout and stderr read
 * without blocking, killed as a group at the deadline or past the output
 * cap, and reaped with waitpid on its own pid only (other modules reap
 * their own children).
 */
#include "exec/exec_internal.h"
#include "util/util.h"
#include "util/banned.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int exec__child_start(struct exec__child *c, char *const argv[], long long output_limit,
                      int64_t deadline_ns, char *err, size_t errlen)
{
    int out[2], er[2];
    memset(c, 0, sizeof(*c));
    c->out = c->err = -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(er, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* sockets, the data-dir lock, ... */
    posix_spawnattr_init(&attr);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigfillset(&dflt); /* the daemon blocks and ignores signals a command must not inherit */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    int rc = posix_spawnp(&c->pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(er[1]);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
        close(out[0]);
        close(er[0]);
        c->pid = 0;
        return -1;
    }
    c->out = out[0];
    c->err = er[0];
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    fcntl(c->err, F_SETFL, O_NONBLOCK);
    sbuf_init(&c->output, (size_t)output_limit);
    c->deadline_ns = deadline_ns;
    c->end = EXEC__RUNNING;
    return 0;
}

size_t exec__child_fds(const struct exec__child *c, struct pollfd *pf)
{
    size_t n = 0;
    if (c->out >= 0)
        pf[n++] = (struct pollfd){.fd = c->out, .events = POLLIN};
    if (c->err >= 0)
        pf[n++] = (struct pollfd){.fd = c->err, .events = POLLIN};
    return n;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Kill the whole group (the command's children too) and stop reading. */
static void kill_group(struct exec__child *c, enum exec__end why)
{
    if (c->pid > 0)
        kill(-c->pid, SIGKILL);
    close_fd(&c->out);
    close_fd(&c->err);
    c->end = why; /* still to be reaped */
}

/* Read fd until it would block; 1 at EOF or error (then it is closed). */
static int drain(struct exec__child *c, int *fd, int is_out)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(*fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r <= 0) {
            close_fd(fd);
            return 1;
        }
        if (is_out) {
            if (sbuf_add(&c->output, buf, (size_t)r) < 0) {
                kill_group(c, EXEC__OVER_LIMIT);
                return 1;
            }
        } else if (c->nerrhead < sizeof(c->errhead) - 1) {
            size_t k = sizeof(c->errhead) - 1 - c->nerrhead;
            k = k < (size_t)r ? k : (size_t)r;
            memcpy(c->errhead + c->nerrhead, buf, k);
            c->nerrhead += k;
            c->errhead[c->nerrhead] = '\0';
        }
    }
}

int exec__child_step(struct exec__child *c)
{
    if (c->out >= 0)
        drain(c, &c->out, 1);
    if (c->err >= 0)
        drain(c, &c->err, 0);
    if (c->pid > 0 && c->end == EXEC__RUNNING && util_mono_ns() >= c->deadline_ns)
        kill_group(c, EXEC__TIMEOUT);
    /* Reaped only once its output is all read (or it was killed): no line is lost. */
    if (c->pid > 0 && c->out < 0 && c->err < 0) {
        pid_t r = waitpid(c->pid, &c->status, WNOHANG);
        if (r == c->pid || (r < 0 && errno == ECHILD)) {
            c->pid = 0;
            if (c->end == EXEC__RUNNING)
                c->end = EXEC__DONE;
        }
    }
    return c->pid == 0 && c->end != EXEC__RUNNING;
}

void exec__child_release(struct exec__child *c)
{
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
            ;
        c->pid = 0;
    }
    close_fd(&c->out);
    close_fd(&c->err);
    sbuf_release(&c->output);
}
