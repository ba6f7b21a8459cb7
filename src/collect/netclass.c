/*
 * netclass.c: /sys/class/net/<dev>/ -> link state per interface, named as
 * node_exporter's "netclass" collector names it: node_network_up (operstate
 * is "up"), node_network_speed_bytes, node_network_mtu_bytes and
 * node_network_carrier, label device. A file the kernel refuses to read
 * (speed and carrier give EINVAL on a down or virtual link) just leaves that
 * metric out for the device, as node_exporter does.
 *
 * The directory stays open across ticks and is rewound each tick, so listing
 * it allocates nothing after the first tick (opendir's DIR is libc's).
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct netclass_dev {
    size_t name; /* offset in names */
    int up;
    int has_speed, has_mtu, has_carrier;
    double speed_bytes, mtu, carrier;
};

/*
 * Speed and MTU change only when a link is reconfigured or renegotiates, which
 * also flips its operstate or carrier: they are re-read when those change and
 * otherwise every SLOW_EVERY ticks. That halves the files this source opens
 * each second (it opened four per device).
 */
#define SLOW_EVERY 10

struct netclass_state {
    DIR *dir; /* class/net below sys_root, opened on the first tick */
    struct netclass_dev *devs;
    size_t cap;
    char *names; /* this tick's device names, NUL-separated */
    size_t names_len, names_cap;
    /* The previous tick's devices (swapped with the above after each tick). */
    struct netclass_dev *prev;
    size_t prev_cap, nprev;
    char *prev_names;
    size_t prev_names_cap;
    unsigned tick;
};

static void netclass_release(void *p)
{
    struct netclass_state *s = p;
    if (s->dir)
        closedir(s->dir);
    free(s->devs);
    free(s->names);
    free(s->prev);
    free(s->prev_names);
}

/* The previous tick's record of dev, or NULL; readdir order is stable, so
 * position `hint` is tried first. */
static const struct netclass_dev *netclass_prev(const struct netclass_state *s, const char *dev,
                                                size_t hint)
{
    if (hint < s->nprev && strcmp(s->prev_names + s->prev[hint].name, dev) == 0)
        return &s->prev[hint];
    for (size_t i = 0; i < s->nprev; i++)
        if (strcmp(s->prev_names + s->prev[i].name, dev) == 0)
            return &s->prev[i];
    return NULL;
}

/*
 * Read the attribute dev/attr into buf and strip the trailing newline.
 * Returns its length, 0 when the file is empty or unreadable (the kernel
 * answers EINVAL for speed on virtual links), or -1 when it does not exist
 * (ENOENT/ENOTDIR; for operstate that means the device vanished since
 * readdir, or the entry is not a device).
 */
static long netclass_attr(int dirfd, const char *dev, const char *attr, char *buf, size_t cap)
{
    char path[NAME_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dev, attr);
    buf[0] = '\0';
    long n = collect__read_small(dirfd, path, buf, cap);
    if (n == -ENOENT || n == -ENOTDIR)
        return -1;
    if (n < 0)
        return 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n;
}

/*
 * Parse a numeric attribute. Returns 1 with *out set, 0 if the attribute is
 * absent or unreadable, or COLLECT_FAILED (ctx->err set) if it is not a number.
 */
static int netclass_num(struct collect_ctx *ctx, int dirfd, const char *dev, const char *attr,
                        int64_t *out)
{
    char buf[64];
    long n = netclass_attr(dirfd, dev, attr, buf, sizeof(buf));
    if (n <= 0)
        return 0;
    if (collect__i64(buf, out) < 0)
        return collect__fail(ctx, "%s/class/net/%s/%s: bad number '%.40s'", ctx->opts->sys_root,
                             dev, attr, buf);
    return 1;
}

/* Append name to the tick's name arena; returns its offset. */
static size_t netclass_name(struct netclass_state *s, const char *name)
{
    size_t len = strlen(name) + 1, off = s->names_len;
    void *g = s->names;
    util_grow(&g, &s->names_cap, off + len, 1);
    s->names = g;
    memcpy(s->names + off, name, len);
    s->names_len += len;
    return off;
}

static int netclass_collect(void *p, struct collect_ctx *ctx)
{
    struct netclass_state *s = p;
    if (ctx->sys_fd < 0) {
        snprintf(ctx->err, sizeof(ctx->err), "no %s", ctx->opts->sys_root);
        return COLLECT_MISSING;
    }
    if (!s->dir) {
        int fd = openat(ctx->sys_fd, "class/net", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            snprintf(ctx->err, sizeof(ctx->err), "%s/class/net: %s", ctx->opts->sys_root,
                     strerror(e));
            return collect__read_error(-e);
        }
        s->dir = fdopendir(fd);
        if (!s->dir) {
            int e = errno;
            close(fd);
            return collect__fail(ctx, "%s/class/net: %s", ctx->opts->sys_root, strerror(e));
        }
    } else {
        /* Rewinding re-reads the directory: interfaces added since show up. */
        rewinddir(s->dir);
    }
    int dfd = dirfd(s->dir);
    size_t ndevs = 0;
    s->names_len = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(s->dir);
        if (!de) {
            if (errno)
                return collect__fail(ctx, "%s/class/net: readdir: %s", ctx->opts->sys_root,
                                     strerror(errno));
            break;
        }
        const char *dev = de->d_name;
        /* Devices are symlinks to their sysfs directory; bonding_masters is a file. */
        if (strcmp(dev, ".") == 0 || strcmp(dev, "..") == 0 || de->d_type == DT_REG)
            continue;
        char state[32];
        long n = netclass_attr(dfd, dev, "operstate", state, sizeof(state));
        if (n < 0)
            continue; /* gone since readdir, or not a device */
        struct netclass_dev d = {.up = strcmp(state, "up") == 0};
        int64_t v;
        int rc;
        if ((rc = netclass_num(ctx, dfd, dev, "carrier", &v)) < 0)
            return rc;
        d.has_carrier = rc;
        d.carrier = (double)v;
        const struct netclass_dev *old = netclass_prev(s, dev, ndevs);
        if (old && s->tick % SLOW_EVERY && old->up == d.up && old->has_carrier == d.has_carrier &&
            old->carrier == d.carrier) {
            d.has_speed = old->has_speed;
            d.speed_bytes = old->speed_bytes;
            d.has_mtu = old->has_mtu;
            d.mtu = old->mtu;
        } else {
            if ((rc = netclass_num(ctx, dfd, dev, "speed", &v)) < 0)
                return rc;
            /* speed is -1 when unknown; node_exporter 2.x skips it, as here. */
            if (rc > 0 && v >= 0) {
                d.has_speed = 1;
                d.speed_bytes = (double)v * 1000.0 * 1000.0 / 8.0; /* Mbit/s -> bytes/s */
            }
            if ((rc = netclass_num(ctx, dfd, dev, "mtu", &v)) < 0)
                return rc;
            d.has_mtu = rc;
            d.mtu = (double)v;
        }
        d.name = netclass_name(s, dev);
        void *g = s->devs;
        util_grow(&g, &s->cap, ndevs + 1, sizeof(*s->devs));
        s->devs = g;
        s->devs[ndevs++] = d;
    }
    s->tick++;
    if (!ndevs) {
        s->nprev = 0;
        return COLLECT_OK;
    }

    struct metric_buf *b = ctx->out;
    metric_fam(b, "node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", METRIC_GAUGE);
    for (size_t i = 0; i < ndevs; i++)
        metric_add1(b, s->devs[i].up, "device", s->names + s->devs[i].name);
    metric_fam(b, "node_network_speed_bytes", "Network device property: speed_bytes", METRIC_GAUGE);
    for (size_t i = 0; i < ndevs; i++)
        if (s->devs[i].has_speed)
            metric_add1(b, s->devs[i].speed_bytes, "device", s->names + s->devs[i].name);
    metric_fam(b, "node_network_mtu_bytes", "Network device property: mtu_bytes", METRIC_GAUGE);
    for (size_t i = 0; i < ndevs; i++)
        if (s->devs[i].has_mtu)
            metric_add1(b, s->devs[i].mtu, "device", s->names + s->devs[i].name);
    metric_fam(b, "node_network_carrier", "Network device property: carrier", METRIC_GAUGE);
    for (size_t i = 0; i < ndevs; i++)
        if (s->devs[i].has_carrier)
            metric_add1(b, s->devs[i].carrier, "device", s->names + s->devs[i].name);

    /* This tick's devices become the reference for the next one. */
    struct netclass_dev *td = s->devs;
    size_t tc = s->cap;
    s->devs = s->prev;
    s->cap = s->prev_cap;
    s->prev = td;
    s->prev_cap = tc;
    s->nprev = ndevs;
    char *tn = s->names;
    tc = s->names_cap;
    s->names = s->prev_names;
    s->names_cap = s->prev_names_cap;
    s->prev_names = tn;
    s->prev_names_cap = tc;
    return COLLECT_OK;
}

const struct collect_source collect__src_netclass = {
    .name = "netclass",
    .state_size = sizeof(struct netclass_state),
    .collect = netclass_collect,
    .release = netclass_release,
};
