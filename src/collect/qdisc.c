/*
 * qdisc.c: the root queueing discipline of every network device, from an
 * rtnetlink RTM_GETQDISC dump -> node_qdisc_* as node_exporter's "qdisc"
 * collector names them (bytes, packets, drops, requeues and overlimits
 * counters; current_queue_length and backlog gauges; labels device and kind),
 * plus sitrep_qdisc_rate_bytes: the rate a shaping root qdisc (tbf, htb,
 * netem) holds the device to. A veth or a tunnel has no link speed; when tc
 * caps it, the qdisc's byte rate over that limit is how full the link is.
 *
 * Only root qdiscs are reported, as node_exporter does: children (of mq, htb,
 * prio) would repeat {device, kind}, and the root's counters already cover
 * what left the device. The ingress/clsact hook is not a root. Only the
 * network namespace sitrep runs in is seen. At most COLLECT_QDISC_MAX roots
 * are kept (dump order, i.e. by interface index); the rest are counted in
 * sitrep_qdisc_skipped.
 *
 * The parser (collect__qdisc_feed) is apart from the socket I/O so tests and
 * the fuzzer can feed it constructed messages; every netlink length is
 * checked against what holds it. The socket is opened once and kept; a dump
 * that goes wrong closes it, so no stale reply can be read by the next tick.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <errno.h>
#include <linux/gen_stats.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Bytes of struct tcmsg on the wire (5 fields of 4 bytes). */
#define TCMSG_LEN 20u
/* A dump reply never exceeds 32 KiB per recv (the kernel sizes dump skbs to
 * the reader's buffer, capped there); a larger one is reported as truncated. */
#define QDISC_RECV_BUF 32768u
#define QDISC_STR_(x)  #x
#define QDISC_STR(x)   QDISC_STR_(x)

/* The slice of a message or attribute being parsed. */
struct nl_span {
    const unsigned char *p;
    size_t len;
};

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Set *why (a static string) and return -1. */
static int bad(const char **why, const char *what)
{
    *why = what;
    return -1;
}

/*
 * Take the next attribute off *s: its type (flags stripped) and payload.
 * Returns 1, 0 at the end, or -1 if the attribute runs past the span.
 */
static int nl_attr_next(struct nl_span *s, uint16_t *type, struct nl_span *data)
{
    if (s->len < NLA_HDRLEN)
        return s->len ? -1 : 0;
    uint16_t alen, atype;
    memcpy(&alen, s->p, 2);
    memcpy(&atype, s->p + 2, 2);
    if (alen < NLA_HDRLEN || alen > s->len)
        return -1;
    *type = atype & NLA_TYPE_MASK;
    data->p = s->p + NLA_HDRLEN;
    data->len = alen - NLA_HDRLEN;
    size_t step = NLA_ALIGN(alen);
    if (step > s->len)
        step = s->len; /* the last attribute need not be padded */
    s->p += step;
    s->len -= step;
    return 1;
}

/*
 * Rate (bytes/s) in a tc_ratespec at off in a: its u32 `rate` is the last of
 * its 12 bytes. The 64-bit attribute, when present, replaces it (the kernel
 * sends it for rates from 2^32 bytes/s up).
 */
static uint64_t ratespec(const struct nl_span *a, size_t off)
{
    return a->len >= off + 12 ? rd32(a->p + off + 8) : 0;
}

/* tbf: TCA_TBF_PARMS.rate or TCA_TBF_RATE64. Returns 0, or -1 if garbled. */
static int parse_tbf(struct nl_span opt, uint64_t *rate)
{
    uint16_t t;
    struct nl_span a;
    int rc;
    uint64_t r32 = 0, r64 = 0;
    while ((rc = nl_attr_next(&opt, &t, &a)) > 0) {
        if (t == TCA_TBF_PARMS)
            r32 = ratespec(&a, 0);
        else if (t == TCA_TBF_RATE64 && a.len >= 8)
            r64 = rd64(a.p);
    }
    *rate = r64 ? r64 : r32;
    return rc;
}

/*
 * netem: TCA_OPTIONS holds a struct tc_netem_qopt first and the attributes
 * after it; TCA_NETEM_RATE's u32 rate or TCA_NETEM_RATE64.
 */
static int parse_netem(struct nl_span opt, uint64_t *rate)
{
    size_t skip = NLA_ALIGN(sizeof(struct tc_netem_qopt));
    *rate = 0;
    if (opt.len < skip)
        return -1;
    opt.p += skip;
    opt.len -= skip;
    uint16_t t;
    struct nl_span a;
    int rc;
    uint64_t r32 = 0, r64 = 0;
    while ((rc = nl_attr_next(&opt, &t, &a)) > 0) {
        if (t == TCA_NETEM_RATE && a.len >= 4)
            r32 = rd32(a.p);
        else if (t == TCA_NETEM_RATE64 && a.len >= 8)
            r64 = rd64(a.p);
    }
    *rate = r64 ? r64 : r32;
    return rc;
}

/*
 * An htb class's limit: min(rate, ceil). A top-level class cannot borrow, so
 * it sends at most its rate (or its ceil, were that lower).
 */
static int parse_htb_class(struct nl_span opt, uint64_t *rate)
{
    uint16_t t;
    struct nl_span a;
    int rc;
    uint64_t r = 0, c = 0, r64 = 0, c64 = 0;
    while ((rc = nl_attr_next(&opt, &t, &a)) > 0) {
        if (t == TCA_HTB_PARMS) {
            r = ratespec(&a, 0);
            c = ratespec(&a, 12);
        } else if (t == TCA_HTB_RATE64 && a.len >= 8) {
            r64 = rd64(a.p);
        } else if (t == TCA_HTB_CEIL64 && a.len >= 8) {
            c64 = rd64(a.p);
        }
    }
    r = r64 ? r64 : r;
    c = c64 ? c64 : c;
    *rate = c && c < r ? c : r;
    return rc;
}

/* TCA_STATS2's nested attributes. Returns 0, or -1 if garbled. */
static int parse_stats2(struct nl_span s, struct collect_qdisc *q, int *basic, int *queue)
{
    uint16_t t;
    struct nl_span a;
    int rc;
    uint64_t pkt64 = 0;
    int have_pkt64 = 0;
    while ((rc = nl_attr_next(&s, &t, &a)) > 0) {
        if (t == TCA_STATS_BASIC) {
            /* struct gnet_stats_basic: u64 bytes, u32 packets (12 bytes, 16 padded) */
            if (a.len < 12)
                return -1;
            q->bytes = rd64(a.p);
            q->packets = rd32(a.p + 8);
            *basic = 1;
        } else if (t == TCA_STATS_PKT64) {
            /* Sent only once packets overflowed the u32 above. */
            if (a.len < 8)
                return -1;
            pkt64 = rd64(a.p);
            have_pkt64 = 1;
        } else if (t == TCA_STATS_QUEUE) {
            /* struct gnet_stats_queue: qlen, backlog, drops, requeues, overlimits */
            if (a.len < 20)
                return -1;
            q->qlen = rd32(a.p);
            q->backlog = rd32(a.p + 4);
            q->drops = rd32(a.p + 8);
            q->requeues = rd32(a.p + 12);
            q->overlimits = rd32(a.p + 16);
            *queue = 1;
        }
    }
    if (have_pkt64)
        q->packets = pkt64;
    return rc;
}

/* Legacy struct tc_stats: u64 bytes, then u32 packets, drops, overlimits,
 * bps, pps, qlen, backlog (36 bytes). No requeues. */
static int parse_stats(struct nl_span a, struct collect_qdisc *q, int basic, int queue)
{
    if (a.len < 36)
        return -1;
    if (!basic) {
        q->bytes = rd64(a.p);
        q->packets = rd32(a.p + 8);
    }
    if (!queue) {
        q->drops = rd32(a.p + 12);
        q->overlimits = rd32(a.p + 16);
        q->qlen = rd32(a.p + 28);
        q->backlog = rd32(a.p + 32);
    }
    return 0;
}

/*
 * One RTM_NEWQDISC or RTM_NEWTCLASS payload (struct tcmsg + attributes) into
 * *q (zeroed here); *opt gets TCA_OPTIONS for the caller to read by kind.
 * Returns 0, or -1 with *why set.
 */
static int parse_tc(struct nl_span m, struct collect_qdisc *q, struct nl_span *opt,
                    const char **why)
{
    memset(q, 0, sizeof(*q));
    memset(opt, 0, sizeof(*opt));
    if (m.len < TCMSG_LEN)
        return bad(why, "tcmsg cut short");
    int32_t ifindex;
    memcpy(&ifindex, m.p + 4, 4);
    q->ifindex = ifindex;
    q->handle = rd32(m.p + 8);
    q->parent = rd32(m.p + 12);
    struct nl_span attrs = {m.p + NLMSG_ALIGN(TCMSG_LEN), m.len - NLMSG_ALIGN(TCMSG_LEN)};
    struct nl_span a, legacy = {0};
    uint16_t t;
    int rc, basic = 0, queue = 0, have_legacy = 0;
    while ((rc = nl_attr_next(&attrs, &t, &a)) > 0) {
        if (t == TCA_KIND) {
            const unsigned char *nul = memchr(a.p, '\0', a.len);
            if (!nul || nul == a.p || (size_t)(nul - a.p) >= sizeof(q->kind))
                return bad(why, "TCA_KIND empty, unterminated or too long");
            memcpy(q->kind, a.p, (size_t)(nul - a.p) + 1);
        } else if (t == TCA_OPTIONS) {
            *opt = a;
        } else if (t == TCA_STATS2) {
            if (parse_stats2(a, q, &basic, &queue) < 0)
                return bad(why, "TCA_STATS2 garbled");
        } else if (t == TCA_STATS) {
            legacy = a;
            have_legacy = 1;
        }
    }
    if (rc < 0)
        return bad(why, "attribute runs past its message");
    if (!q->kind[0])
        return bad(why, "no TCA_KIND");
    /* The kernel sends both; the newer, wider TCA_STATS2 wins field by field. */
    if (have_legacy && parse_stats(legacy, q, basic, queue) < 0)
        return bad(why, "TCA_STATS cut short");
    return 0;
}

/* The kept root of device ifindex, or NULL. */
static struct collect_qdisc *find_root(struct collect_qdisc_dump *d, int32_t ifindex)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->q[i].ifindex == ifindex)
            return &d->q[i];
    return NULL;
}

static int on_qdisc(struct collect_qdisc_dump *d, struct nl_span m, const char **why)
{
    struct collect_qdisc q;
    struct nl_span opt;
    if (parse_tc(m, &q, &opt, why) < 0)
        return -1;
    if (q.parent != TC_H_ROOT)
        return 0;
    int rc = 0;
    if (opt.len && strcmp(q.kind, "tbf") == 0)
        rc = parse_tbf(opt, &q.rate);
    else if (opt.len && strcmp(q.kind, "netem") == 0)
        rc = parse_netem(opt, &q.rate);
    if (rc < 0)
        return bad(why, "TCA_OPTIONS garbled");
    /* A dump interrupted by a change can repeat a device: keep the latest. */
    struct collect_qdisc *slot = find_root(d, q.ifindex);
    if (!slot) {
        if (d->n == COLLECT_QDISC_MAX) {
            d->skipped++;
            return 0;
        }
        slot = &d->q[d->n++];
    }
    *slot = q;
    return 0;
}

/* A class of an htb root: add its limit to the root's rate. */
static int on_class(struct collect_qdisc_dump *d, struct nl_span m, const char **why)
{
    struct collect_qdisc c;
    struct nl_span opt;
    if (parse_tc(m, &c, &opt, why) < 0)
        return -1;
    struct collect_qdisc *root = find_root(d, c.ifindex);
    /* Top-level classes of this very qdisc: the class id's major is its handle's. */
    if (!root || c.parent != TC_H_ROOT || strcmp(c.kind, "htb") != 0 ||
        strcmp(root->kind, "htb") != 0 || TC_H_MAJ(c.handle) != TC_H_MAJ(root->handle))
        return 0;
    uint64_t r = 0;
    if (parse_htb_class(opt, &r) < 0)
        return bad(why, "htb TCA_OPTIONS garbled");
    root->rate += r;
    return 0;
}

void collect__qdisc_begin(struct collect_qdisc_dump *d, uint32_t seq, int keep)
{
    if (!keep) {
        d->n = 0;
        d->skipped = 0;
    }
    d->seq = seq;
    d->classes = keep;
    d->done = 0;
    d->error = 0;
}

int collect__qdisc_feed(struct collect_qdisc_dump *d, const void *buf, size_t len, const char **why)
{
    struct nl_span s = {buf, len};
    while (s.len) {
        struct nlmsghdr h;
        if (s.len < sizeof(h))
            return bad(why, "netlink header cut short");
        memcpy(&h, s.p, sizeof(h));
        if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > s.len)
            return bad(why, "netlink message length out of bounds");
        struct nl_span m = {s.p + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN};
        size_t step = NLMSG_ALIGN(h.nlmsg_len);
        if (step > s.len)
            step = s.len;
        s.p += step;
        s.len -= step;
        if (h.nlmsg_seq != d->seq)
            continue; /* a reply to an earlier request */
        if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
            int32_t err = 0;
            if (m.len >= 4)
                memcpy(&err, m.p, 4);
            else if (h.nlmsg_type == NLMSG_ERROR)
                return bad(why, "NLMSG_ERROR cut short");
            if (err < 0) {
                d->error = err == INT32_MIN ? EIO : -err;
                return bad(why, "the kernel refused the dump");
            }
            d->done = 1;
            return 1;
        }
        int rc = 0;
        if (h.nlmsg_type == RTM_NEWQDISC && !d->classes)
            rc = on_qdisc(d, m, why);
        else if (h.nlmsg_type == RTM_NEWTCLASS && d->classes)
            rc = on_class(d, m, why);
        if (rc < 0)
            return -1;
    }
    return 0;
}

struct qdisc_state {
    int fd; /* the rtnetlink socket + 1; 0 when closed */
    uint32_t seq;
    struct collect_qdisc_dump dump;
    union {
        struct nlmsghdr align;
        unsigned char b[QDISC_RECV_BUF];
    } buf;
};

static void qdisc_close(struct qdisc_state *s)
{
    if (s->fd)
        close(s->fd - 1);
    s->fd = 0;
}

static void qdisc_release(void *p)
{
    qdisc_close(p);
}

static int qdisc_open(struct qdisc_state *s, struct collect_ctx *ctx)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        int e = errno;
        snprintf(ctx->err, sizeof(ctx->err), "rtnetlink socket: %s", strerror(e));
        return e == EAFNOSUPPORT || e == EPROTONOSUPPORT ? COLLECT_MISSING : COLLECT_FAILED;
    }
    /* A dump always answers; the timeout only bounds a tick if it did not. */
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    s->fd = fd + 1;
    return COLLECT_OK;
}

/* Send a dump request of `type` for ifindex (0: all) and read it whole into
 * s->dump. Returns COLLECT_OK or COLLECT_FAILED (ctx->err set). */
static int qdisc_dump(struct qdisc_state *s, struct collect_ctx *ctx, uint16_t type,
                      int32_t ifindex, int keep)
{
    struct {
        struct nlmsghdr h;
        struct tcmsg t;
    } req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = type;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = ++s->seq;
    req.t.tcm_family = AF_UNSPEC;
    req.t.tcm_ifindex = ifindex;
    collect__qdisc_begin(&s->dump, s->seq, keep);
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    const char *what = type == RTM_GETQDISC ? "RTM_GETQDISC" : "RTM_GETTCLASS";
    if (sendto(s->fd - 1, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return collect__fail(ctx, "rtnetlink %s: send: %s", what, strerror(errno));
    for (;;) {
        struct iovec iov = {s->buf.b, sizeof(s->buf.b)};
        struct sockaddr_nl from;
        struct msghdr mh = {
            .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(s->fd - 1, &mh, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return collect__fail(ctx, "rtnetlink %s: receive: %s", what, strerror(errno));
        if (from.nl_pid != 0)
            continue; /* only the kernel answers dumps */
        if (n == 0 || (mh.msg_flags & MSG_TRUNC))
            return collect__fail(ctx, "rtnetlink %s: reply %s", what,
                                 n ? "larger than the buffer" : "empty");
        const char *why = "";
        int rc = collect__qdisc_feed(&s->dump, s->buf.b, (size_t)n, &why);
        if (rc < 0)
            return collect__fail(ctx, "rtnetlink %s: %s%s%s", what, why, s->dump.error ? ": " : "",
                                 s->dump.error ? strerror(s->dump.error) : "");
        if (rc > 0)
            return COLLECT_OK;
    }
}

/* Device names for the kept roots; a device gone since the dump is dropped. */
static int qdisc_names(struct qdisc_state *s, struct collect_ctx *ctx)
{
    struct collect_qdisc_dump *d = &s->dump;
    size_t kept = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_ifindex = d->q[i].ifindex;
        /* Any socket answers SIOCGIFNAME for its namespace: no socket per call
         * as if_indextoname() opens. */
        if (ioctl(s->fd - 1, SIOCGIFNAME, &ifr) < 0) {
            if (errno == ENODEV)
                continue;
            return collect__fail(ctx, "SIOCGIFNAME %d: %s", (int)d->q[i].ifindex, strerror(errno));
        }
        d->q[kept] = d->q[i];
        memcpy(d->q[kept].device, ifr.ifr_name, sizeof(d->q[kept].device));
        d->q[kept].device[sizeof(d->q[kept].device) - 1] = '\0';
        kept++;
    }
    d->n = kept;
    return COLLECT_OK;
}

static const struct {
    const char *name, *help;
    enum metric_type type;
    size_t off;
} qdisc_fams[] = {
    {"node_qdisc_bytes_total", "Number of bytes sent.", METRIC_COUNTER,
     offsetof(struct collect_qdisc, bytes)},
    {"node_qdisc_packets_total", "Number of packets sent.", METRIC_COUNTER,
     offsetof(struct collect_qdisc, packets)},
    {"node_qdisc_drops_total", "Number of packets dropped.", METRIC_COUNTER,
     offsetof(struct collect_qdisc, drops)},
    {"node_qdisc_requeues_total", "Number of packets dequeued, not transmitted, and requeued.",
     METRIC_COUNTER, offsetof(struct collect_qdisc, requeues)},
    {"node_qdisc_overlimits_total", "Number of overlimit packets.", METRIC_COUNTER,
     offsetof(struct collect_qdisc, overlimits)},
    {"node_qdisc_current_queue_length", "Number of packets currently in queue to be sent.",
     METRIC_GAUGE, offsetof(struct collect_qdisc, qlen)},
    {"node_qdisc_backlog", "Number of bytes currently in queue to be sent.", METRIC_GAUGE,
     offsetof(struct collect_qdisc, backlog)},
};

static int qdisc_collect(void *p, struct collect_ctx *ctx)
{
    struct qdisc_state *s = p;
    int rc;
    if (!s->fd && (rc = qdisc_open(s, ctx)) != COLLECT_OK)
        return rc;
    rc = qdisc_dump(s, ctx, RTM_GETQDISC, 0, 0);
    /* Class dumps need the device: one per htb root, for its classes' rates. */
    for (size_t i = 0; rc == COLLECT_OK && i < s->dump.n; i++)
        if (strcmp(s->dump.q[i].kind, "htb") == 0)
            rc = qdisc_dump(s, ctx, RTM_GETTCLASS, s->dump.q[i].ifindex, 1);
    if (rc == COLLECT_OK)
        rc = qdisc_names(s, ctx);
    if (rc != COLLECT_OK) {
        qdisc_close(s); /* replies left unread must not meet the next tick */
        return rc;
    }

    const struct collect_qdisc_dump *d = &s->dump;
    struct metric_buf *b = ctx->out;
    for (size_t f = 0; f < ARRAY_SIZE(qdisc_fams) && d->n; f++) {
        metric_fam(b, qdisc_fams[f].name, qdisc_fams[f].help, qdisc_fams[f].type);
        for (size_t i = 0; i < d->n; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&d->q[i] + qdisc_fams[f].off, sizeof(v));
            metric_add2(b, (double)v, "device", d->q[i].device, "kind", d->q[i].kind);
        }
    }
    int any_rate = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (!d->q[i].rate)
            continue;
        if (!any_rate++)
            metric_fam(b, "sitrep_qdisc_rate_bytes",
                       "Rate in bytes per second the root qdisc shapes the device to "
                       "(tbf rate, netem rate, sum of htb top-level class rates).",
                       METRIC_GAUGE);
        metric_add2(b, (double)d->q[i].rate, "device", d->q[i].device, "kind", d->q[i].kind);
    }
    metric_fam(b, "sitrep_qdisc_skipped",
               "Root qdiscs left out: the source reports at most " QDISC_STR(COLLECT_QDISC_MAX) ".",
               METRIC_GAUGE);
    metric_add0(b, (double)d->skipped);
    return COLLECT_OK;
}

const struct collect_source collect__src_qdisc = {
    .name = "qdisc",
    .flags = COLLECT_OWN_ROOT,
    .state_size = sizeof(struct qdisc_state),
    .collect = qdisc_collect,
    .release = qdisc_release,
};
