/*
 * netdev.c: /proc/net/dev -> per-interface traffic counters, named as
 * node_exporter's "netdev" collector names them (node_network_receive_*_total,
 * node_network_transmit_*_total, label device). Every interface is reported,
 * lo included (upstream node_exporter excludes none by default); interfaces
 * come and go with containers, so nothing here assumes a fixed set.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* Columns of /proc/net/dev, in file order (unchanged since Linux 2.6). */
#define NETDEV_COLS 16

struct netdev_iface {
    const char *name; /* points into ctx->buf */
    uint64_t v[NETDEV_COLS];
};

struct netdev_state {
    struct netdev_iface *ifaces; /* this tick's parse; grows to the interface count */
    size_t cap;
};

static void netdev_release(void *p)
{
    struct netdev_state *s = p;
    free(s->ifaces);
}

static const struct {
    const char *name, *help;
} netdev_cols[NETDEV_COLS] = {
    {"node_network_receive_bytes_total", "Network device statistic receive_bytes."},
    {"node_network_receive_packets_total", "Network device statistic receive_packets."},
    {"node_network_receive_errs_total", "Network device statistic receive_errs."},
    {"node_network_receive_drop_total", "Network device statistic receive_drop."},
    {"node_network_receive_fifo_total", "Network device statistic receive_fifo."},
    {"node_network_receive_frame_total", "Network device statistic receive_frame."},
    {"node_network_receive_compressed_total", "Network device statistic receive_compressed."},
    {"node_network_receive_multicast_total", "Network device statistic receive_multicast."},
    {"node_network_transmit_bytes_total", "Network device statistic transmit_bytes."},
    {"node_network_transmit_packets_total", "Network device statistic transmit_packets."},
    {"node_network_transmit_errs_total", "Network device statistic transmit_errs."},
    {"node_network_transmit_drop_total", "Network device statistic transmit_drop."},
    {"node_network_transmit_fifo_total", "Network device statistic transmit_fifo."},
    {"node_network_transmit_colls_total", "Network device statistic transmit_colls."},
    {"node_network_transmit_carrier_total", "Network device statistic transmit_carrier."},
    {"node_network_transmit_compressed_total", "Network device statistic transmit_compressed."},
};

static int netdev_collect(void *p, struct collect_ctx *ctx)
{
    struct netdev_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "net/dev");
    if (n < 0)
        return collect__read_error(n);

    /* Parse everything first so a garbled line emits nothing at all. */
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    size_t nifaces = 0;
    int lineno = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        if (lineno <= 2) {
            /* "Inter-|   Receive ..." and " face |bytes ...": the two headers. */
            if (!strchr(line, '|'))
                return collect__fail(ctx, "%s/net/dev:%d: want a header line, got '%.40s'", root,
                                     lineno, line);
            continue;
        }
        /*
         * "  eth0: 123 ...". Names cannot contain ':' (dev_valid_name), and a
         * 15-character name leaves no blank between ':' and the first number.
         */
        char *colon = strchr(line, ':');
        if (!colon) {
            if (strspn(line, " \t") == strlen(line))
                continue; /* blank line */
            return collect__fail(ctx, "%s/net/dev:%d: no ':' after the interface name", root,
                                 lineno);
        }
        *colon = '\0';
        char *name = line + strspn(line, " \t");
        if (!*name || strpbrk(name, " \t"))
            return collect__fail(ctx, "%s/net/dev:%d: bad interface name '%.40s'", root, lineno,
                                 name);
        char *f[NETDEV_COLS + 1];
        int nf = collect__fields(colon + 1, f, NETDEV_COLS + 1);
        /* More columns would mean a format this parser does not know. */
        if (nf != NETDEV_COLS)
            return collect__fail(ctx, "%s/net/dev:%d: %s has %d%s columns, want %d", root, lineno,
                                 name, nf, nf > NETDEV_COLS ? "+" : "", NETDEV_COLS);
        void *g = s->ifaces;
        util_grow(&g, &s->cap, nifaces + 1, sizeof(*s->ifaces));
        s->ifaces = g;
        struct netdev_iface *it = &s->ifaces[nifaces];
        it->name = name;
        for (int i = 0; i < NETDEV_COLS; i++)
            if (collect__u64(f[i], &it->v[i]) < 0)
                return collect__fail(ctx, "%s/net/dev:%d: %s: bad number '%.40s'", root, lineno,
                                     name, f[i]);
        nifaces++;
    }
    if (lineno < 2)
        return collect__fail(ctx, "%s/net/dev: headers missing (truncated?)", root);

    for (int c = 0; c < NETDEV_COLS && nifaces; c++) {
        metric_fam(ctx->out, netdev_cols[c].name, netdev_cols[c].help, METRIC_COUNTER);
        for (size_t i = 0; i < nifaces; i++)
            metric_add1(ctx->out, (double)s->ifaces[i].v[c], "device", s->ifaces[i].name);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_netdev = {
    .name = "netdev",
    .state_size = sizeof(struct netdev_state),
    .collect = netdev_collect,
    .release = netdev_release,
};
