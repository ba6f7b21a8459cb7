/*
 * qdisc_test.c: the rtnetlink qdisc parser on dumps built here with the
 * kernel's own structs (roots and children, TCA_STATS2 and legacy TCA_STATS,
 * 64-bit packets and rates, tbf/netem/htb rates, the 256-root cap, kernel
 * errors, every kind of bad length and every truncation), then the source
 * against the real kernel: in a private network namespace, a veth pair
 * shaped with tbf and htb, traffic sent through it, counters that move.
 */
#include "testutil.h"
#include "collect/collect_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/gen_stats.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

/* A dump under construction: messages appended back to back. */
struct nlb {
    unsigned char b[65536];
    size_t len;
    size_t msg;     /* offset of the open message */
    size_t nest[4]; /* offsets of open nested attributes */
    int depth;
};

/* The one builder, emptied. */
static struct nlb *fresh(void)
{
    static struct nlb w;
    memset(&w, 0, sizeof(w));
    return &w;
}

static void put(struct nlb *w, const void *p, size_t n)
{
    assert_true(w->len + NLA_ALIGN(n) <= sizeof(w->b));
    memcpy(w->b + w->len, p, n);
    memset(w->b + w->len + n, 0, NLA_ALIGN(n) - n);
    w->len += NLA_ALIGN(n);
}

static void msg_begin(struct nlb *w, uint16_t type, uint32_t seq)
{
    struct nlmsghdr h = {.nlmsg_type = type, .nlmsg_flags = NLM_F_MULTI, .nlmsg_seq = seq};
    w->msg = w->len;
    put(w, &h, sizeof(h));
}

static void msg_end(struct nlb *w)
{
    uint32_t len = (uint32_t)(w->len - w->msg);
    memcpy(w->b + w->msg, &len, 4);
}

static void tc_begin(struct nlb *w, uint16_t type, uint32_t seq, int ifindex, uint32_t handle,
                     uint32_t parent, const char *kind)
{
    msg_begin(w, type, seq);
    struct tcmsg t = {.tcm_family = AF_UNSPEC,
                      .tcm_ifindex = ifindex,
                      .tcm_handle = handle,
                      .tcm_parent = parent};
    put(w, &t, sizeof(t));
    if (kind) {
        struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + strlen(kind) + 1),
                           .nla_type = TCA_KIND};
        memcpy(w->b + w->len, &a, sizeof(a));
        w->len += NLA_HDRLEN;
        put(w, kind, strlen(kind) + 1);
    }
}

static void attr(struct nlb *w, uint16_t type, const void *data, size_t n)
{
    struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + n), .nla_type = type};
    memcpy(w->b + w->len, &a, sizeof(a));
    w->len += NLA_HDRLEN;
    put(w, data, n);
}

static void nest_begin(struct nlb *w, uint16_t type)
{
    struct nlattr a = {.nla_type = type};
    w->nest[w->depth++] = w->len;
    memcpy(w->b + w->len, &a, sizeof(a));
    w->len += NLA_HDRLEN;
}

static void nest_end(struct nlb *w)
{
    size_t at = w->nest[--w->depth];
    uint16_t len = (uint16_t)(w->len - at);
    memcpy(w->b + at, &len, 2);
}

static void stats2(struct nlb *w, uint64_t bytes, uint32_t packets, uint32_t qlen, uint32_t backlog,
                   uint32_t drops, uint32_t requeues, uint32_t overlimits)
{
    struct gnet_stats_basic b = {.bytes = bytes, .packets = packets};
    struct gnet_stats_queue q = {.qlen = qlen,
                                 .backlog = backlog,
                                 .drops = drops,
                                 .requeues = requeues,
                                 .overlimits = overlimits};
    nest_begin(w, TCA_STATS2);
    attr(w, TCA_STATS_BASIC, &b, sizeof(b));
    attr(w, TCA_STATS_QUEUE, &q, sizeof(q));
    nest_end(w);
}

static void legacy_stats(struct nlb *w, uint64_t bytes, uint32_t packets, uint32_t drops,
                         uint32_t overlimits, uint32_t qlen, uint32_t backlog)
{
    struct tc_stats s = {.bytes = bytes,
                         .packets = packets,
                         .drops = drops,
                         .overlimits = overlimits,
                         .qlen = qlen,
                         .backlog = backlog};
    attr(w, TCA_STATS, &s, sizeof(s));
}

static void done(struct nlb *w, uint32_t seq)
{
    msg_begin(w, NLMSG_DONE, seq);
    int32_t zero = 0;
    put(w, &zero, sizeof(zero));
    msg_end(w);
}

static void tbf_options(struct nlb *w, uint32_t rate, uint64_t rate64)
{
    struct tc_tbf_qopt q = {.rate = {.rate = rate}, .limit = 50000, .buffer = 1000};
    nest_begin(w, TCA_OPTIONS);
    attr(w, TCA_TBF_PARMS, &q, sizeof(q));
    if (rate64)
        attr(w, TCA_TBF_RATE64, &rate64, sizeof(rate64));
    nest_end(w);
}

/* A heap copy of exactly n bytes, so ASan catches any read past the end. */
static int feed_exact(struct collect_qdisc_dump *d, const void *p, size_t n, const char **why)
{
    void *copy = xmalloc(n ? n : 1);
    memcpy(copy, p, n);
    int rc = collect__qdisc_feed(d, copy, n, why);
    free(copy);
    return rc;
}

static struct collect_qdisc_dump *new_dump(uint32_t seq)
{
    struct collect_qdisc_dump *d = xcalloc(1, sizeof(*d));
    collect__qdisc_begin(d, seq, 0);
    return d;
}

/* Parse the whole of w as replies to seq, which must end with NLMSG_DONE. */
static struct collect_qdisc_dump *parse_all(const struct nlb *w, uint32_t seq)
{
    struct collect_qdisc_dump *d = new_dump(seq);
    const char *why = NULL;
    int rc = feed_exact(d, w->b, w->len, &why);
    if (rc != 1)
        fail_msg("feed returned %d (%s)", rc, why ? why : "");
    assert_true(d->done);
    return d;
}

/* tbf root with stats (and a legacy copy), a child, ingress, a legacy-only root. */
static void build_basic(struct nlb *w, uint32_t seq)
{
    tc_begin(w, RTM_NEWQDISC, seq, 3, 0x80010000u, TC_H_ROOT, "tbf");
    tbf_options(w, 125000, 0);
    stats2(w, 5726, 11, 1, 1514, 2, 3, 4);
    legacy_stats(w, 1, 1, 1, 1, 1, 1); /* TCA_STATS2 wins */
    msg_end(w);
    tc_begin(w, RTM_NEWQDISC, seq, 3, 0x00100000u, 0x80010001u, "pfifo");
    stats2(w, 999, 9, 0, 0, 0, 0, 0);
    msg_end(w);
    tc_begin(w, RTM_NEWQDISC, seq, 3, 0xffff0000u, TC_H_INGRESS, "ingress");
    stats2(w, 888, 8, 0, 0, 0, 0, 0);
    msg_end(w);
    tc_begin(w, RTM_NEWQDISC, seq, 1, 0, TC_H_ROOT, "noqueue");
    legacy_stats(w, 70, 7, 6, 5, 4, 3);
    msg_end(w);
}

/*
 * got is device ifindex's root of this kind with, in order: bytes, packets,
 * drops, requeues, overlimits, qlen, backlog and rate.
 */
static void expect_qdisc(const struct collect_qdisc *got, int ifindex, const char *kind,
                         const uint64_t want[8])
{
    assert_int_equal(got->ifindex, ifindex);
    assert_string_equal(got->kind, kind);
    const uint64_t g[8] = {got->bytes,      got->packets, got->drops,   got->requeues,
                           got->overlimits, got->qlen,    got->backlog, got->rate};
    for (size_t i = 0; i < 8; i++)
        if (g[i] != want[i])
            fail_msg("field %zu of %s on %d: %llu, want %llu", i, kind, ifindex,
                     (unsigned long long)g[i], (unsigned long long)want[i]);
}

static void check_basic(const struct collect_qdisc_dump *d)
{
    assert_int_equal(d->n, 2);
    assert_int_equal(d->skipped, 0);
    expect_qdisc(&d->q[0], 3, "tbf", (const uint64_t[8]){5726, 11, 2, 3, 4, 1, 1514, 125000});
    /* Legacy TCA_STATS only: no requeues in it. */
    expect_qdisc(&d->q[1], 1, "noqueue", (const uint64_t[8]){70, 7, 6, 0, 5, 4, 3, 0});
}

static void test_roots(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    build_basic(w, 7);
    done(w, 7);
    struct collect_qdisc_dump *d = parse_all(w, 7);
    check_basic(d);
    free(d);
}

/* One recv per message, and replies to an older request in between. */
static void test_split_and_stale(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    size_t cut[16], ncut = 0;
    tc_begin(w, RTM_NEWQDISC, 6, 9, 0, TC_H_ROOT, "tbf"); /* stale: seq 6 */
    msg_end(w);
    cut[ncut++] = w->len;
    build_basic(w, 7);
    cut[ncut++] = w->len;
    done(w, 6); /* the stale dump's end is no end of this one */
    done(w, 7);
    cut[ncut++] = w->len;
    struct collect_qdisc_dump *d = new_dump(7);
    const char *why = NULL;
    size_t at = 0;
    for (size_t i = 0; i < ncut; i++) {
        int rc = feed_exact(d, w->b + at, cut[i] - at, &why);
        assert_int_equal(rc, i + 1 == ncut);
        at = cut[i];
    }
    check_basic(d);
    free(d);
}

static void test_wide_counters(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    tc_begin(w, RTM_NEWQDISC, 1, 2, 0x10000, TC_H_ROOT, "tbf");
    tbf_options(w, UINT32_MAX, 6250000000ull); /* 50gbit: past what u32 holds */
    struct gnet_stats_basic b = {.bytes = 1ull << 40, .packets = 5};
    uint64_t pkt64 = (1ull << 32) + 5;
    nest_begin(w, TCA_STATS2);
    attr(w, TCA_STATS_BASIC, &b, sizeof(b));
    attr(w, TCA_STATS_PKT64, &pkt64, sizeof(pkt64));
    nest_end(w);
    msg_end(w);
    done(w, 1);
    struct collect_qdisc_dump *d = parse_all(w, 1);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->q[0].bytes, 1ull << 40);
    assert_int_equal(d->q[0].packets, (1ull << 32) + 5);
    assert_int_equal(d->q[0].rate, 6250000000ull);
    free(d);
}

static void test_netem_rate(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    struct tc_netem_qopt q = {.latency = 1000, .limit = 1000};
    struct tc_netem_rate r = {.rate = 250000};
    uint64_t r64 = 10000000000ull;
    /* TCA_OPTIONS: the struct first, then attributes (not a plain nest). */
    tc_begin(w, RTM_NEWQDISC, 1, 2, 0x10000, TC_H_ROOT, "netem");
    nest_begin(w, TCA_OPTIONS);
    put(w, &q, sizeof(q));
    attr(w, TCA_NETEM_RATE, &r, sizeof(r));
    nest_end(w);
    msg_end(w);
    tc_begin(w, RTM_NEWQDISC, 1, 3, 0x10000, TC_H_ROOT, "netem");
    nest_begin(w, TCA_OPTIONS);
    put(w, &q, sizeof(q));
    r.rate = UINT32_MAX;
    attr(w, TCA_NETEM_RATE, &r, sizeof(r));
    attr(w, TCA_NETEM_RATE64, &r64, sizeof(r64));
    nest_end(w);
    msg_end(w);
    tc_begin(w, RTM_NEWQDISC, 1, 4, 0x10000, TC_H_ROOT, "netem"); /* delay only */
    nest_begin(w, TCA_OPTIONS);
    put(w, &q, sizeof(q));
    nest_end(w);
    msg_end(w);
    done(w, 1);
    struct collect_qdisc_dump *d = parse_all(w, 1);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->q[0].rate, 250000);
    assert_int_equal(d->q[1].rate, 10000000000ull);
    assert_int_equal(d->q[2].rate, 0);
    free(d);
}

static void htb_class(struct nlb *w, uint32_t seq, int ifindex, uint32_t classid, uint32_t parent,
                      uint32_t rate, uint32_t ceil)
{
    struct tc_htb_opt o = {.rate = {.rate = rate}, .ceil = {.rate = ceil}};
    tc_begin(w, RTM_NEWTCLASS, seq, ifindex, classid, parent, "htb");
    nest_begin(w, TCA_OPTIONS);
    attr(w, TCA_HTB_PARMS, &o, sizeof(o));
    nest_end(w);
    stats2(w, 1, 1, 0, 0, 0, 0, 0);
    msg_end(w);
}

/* htb's rate is its top-level classes' min(rate, ceil), summed. */
static void test_htb_classes(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    tc_begin(w, RTM_NEWQDISC, 1, 5, 0x10000, TC_H_ROOT, "htb");
    stats2(w, 100, 1, 0, 0, 0, 0, 0);
    msg_end(w);
    tc_begin(w, RTM_NEWQDISC, 1, 6, 0x20000, 0x10001, "htb"); /* a child htb elsewhere */
    msg_end(w);
    htb_class(w, 1, 5, 0x10001, TC_H_ROOT, 777, 777); /* a class in a qdisc dump: ignored */
    done(w, 1);
    struct collect_qdisc_dump *d = parse_all(w, 1);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->q[0].rate, 0);

    w = fresh();
    htb_class(w, 2, 5, 0x10001, TC_H_ROOT, 1250000, 2500000);   /* 10mbit ceil 20mbit */
    htb_class(w, 2, 5, 0x10010, 0x10001, 125000, 1250000);      /* a leaf: not top-level */
    htb_class(w, 2, 5, 0x10002, TC_H_ROOT, 625000, 375000);     /* ceil below rate */
    htb_class(w, 2, 5, 0x20001, TC_H_ROOT, 999999, 999999);     /* another htb's */
    htb_class(w, 2, 7, 0x10001, TC_H_ROOT, 999999, 999999);     /* another device's */
    tc_begin(w, RTM_NEWQDISC, 2, 9, 0x30000, TC_H_ROOT, "tbf"); /* a qdisc in a class dump */
    msg_end(w);
    done(w, 2);
    collect__qdisc_begin(d, 2, 1);
    const char *why = NULL;
    assert_int_equal(feed_exact(d, w->b, w->len, &why), 1);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->q[0].bytes, 100);
    assert_int_equal(d->q[0].rate, 1250000 + 375000);
    free(d);
}

/* Past COLLECT_QDISC_MAX roots: counted, not kept; a repeated device is replaced. */
static void test_cap(void **state)
{
    (void)state;
    struct nlb *w;
    struct collect_qdisc_dump *d = new_dump(1);
    const char *why = NULL;
    for (int i = 0; i < 300; i++) {
        w = fresh();
        tc_begin(w, RTM_NEWQDISC, 1, i + 1, 0, TC_H_ROOT, "noqueue");
        stats2(w, (uint64_t)i, 0, 0, 0, 0, 0, 0);
        msg_end(w);
        assert_int_equal(feed_exact(d, w->b, w->len, &why), 0);
    }
    w = fresh();
    tc_begin(w, RTM_NEWQDISC, 1, 10, 0, TC_H_ROOT, "fq_codel"); /* device 10 again */
    stats2(w, 12345, 0, 0, 0, 0, 0, 0);
    msg_end(w);
    done(w, 1);
    assert_int_equal(feed_exact(d, w->b, w->len, &why), 1);
    assert_int_equal(d->n, COLLECT_QDISC_MAX);
    assert_int_equal(d->skipped, 300 - COLLECT_QDISC_MAX);
    assert_int_equal(d->q[9].ifindex, 10);
    assert_string_equal(d->q[9].kind, "fq_codel");
    assert_int_equal(d->q[9].bytes, 12345);
    free(d);
}

static void expect_garbled(const struct nlb *w, uint32_t seq, const char *what)
{
    struct collect_qdisc_dump *d = new_dump(seq);
    const char *why = NULL;
    if (feed_exact(d, w->b, w->len, &why) != -1)
        fail_msg("accepted: %s", what);
    assert_non_null(why);
    free(d);
}

static void test_kernel_error(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    msg_begin(w, NLMSG_ERROR, 4);
    struct nlmsgerr e = {.error = -EPERM};
    put(w, &e, sizeof(e));
    msg_end(w);
    struct collect_qdisc_dump *d = new_dump(4);
    const char *why = NULL;
    assert_int_equal(feed_exact(d, w->b, w->len, &why), -1);
    assert_int_equal(d->error, EPERM);
    free(d);
    /* A dump that fails part-way ends with an error in NLMSG_DONE. */
    w = fresh();
    msg_begin(w, NLMSG_DONE, 4);
    int32_t err = -EMSGSIZE;
    put(w, &err, sizeof(err));
    msg_end(w);
    d = new_dump(4);
    assert_int_equal(feed_exact(d, w->b, w->len, &why), -1);
    assert_int_equal(d->error, EMSGSIZE);
    free(d);
}

static void test_bad_lengths(void **state)
{
    (void)state;
    struct nlb *w;
    /* A header cut short, and a message longer than what holds it. */
    w = fresh();
    build_basic(w, 1);
    w->len = 10;
    expect_garbled(w, 1, "10-byte header");
    w = fresh();
    build_basic(w, 1);
    uint32_t big = (uint32_t)w->len + 8;
    memcpy(w->b, &big, 4);
    expect_garbled(w, 1, "nlmsg_len past the buffer");
    w = fresh();
    msg_begin(w, RTM_NEWQDISC, 1);
    msg_end(w);
    uint32_t small = 8;
    memcpy(w->b, &small, 4);
    expect_garbled(w, 1, "nlmsg_len below the header");
    /* tcmsg cut short. */
    w = fresh();
    msg_begin(w, RTM_NEWQDISC, 1);
    put(w, "12345678", 8);
    msg_end(w);
    expect_garbled(w, 1, "8-byte tcmsg");
    /* An attribute longer than its message, and one shorter than its header. */
    for (uint16_t alen = 2; alen <= 200; alen += 198) {
        w = fresh();
        tc_begin(w, RTM_NEWQDISC, 1, 1, 0, TC_H_ROOT, "tbf");
        size_t at = w->len;
        stats2(w, 1, 1, 1, 1, 1, 1, 1);
        memcpy(w->b + at, &alen, 2);
        msg_end(w);
        expect_garbled(w, 1, "attribute length");
    }
    /* A nested attribute longer than its parent. */
    w = fresh();
    tc_begin(w, RTM_NEWQDISC, 1, 1, 0, TC_H_ROOT, "tbf");
    size_t at = w->len;
    stats2(w, 1, 1, 1, 1, 1, 1, 1);
    uint16_t inner = 100;
    memcpy(w->b + at + NLA_HDRLEN, &inner, 2);
    msg_end(w);
    expect_garbled(w, 1, "nested attribute length");
}

static void test_bad_fields(void **state)
{
    (void)state;
    struct nlb *w;
    /* TCA_KIND: unterminated, empty, longer than any kind, missing. */
    const char *kinds[] = {"tbf", "", "a-kind-name-longer-than-16"};
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        w = fresh();
        tc_begin(w, RTM_NEWQDISC, 1, 1, 0, TC_H_ROOT, NULL);
        attr(w, TCA_KIND, kinds[k], strlen(kinds[k]) + (k ? 1 : 0));
        msg_end(w);
        expect_garbled(w, 1, kinds[k]);
    }
    w = fresh();
    tc_begin(w, RTM_NEWQDISC, 1, 1, 0, TC_H_ROOT, NULL);
    stats2(w, 1, 1, 1, 1, 1, 1, 1);
    msg_end(w);
    expect_garbled(w, 1, "no TCA_KIND");
    /* Structs shorter than the kernel's, and options too short for their kind. */
    static const struct {
        const char *kind;
        uint16_t outer, type; /* the attribute, nested in outer unless 0 */
        size_t len;
    } shorts[] = {
        {"tbf", TCA_STATS2, TCA_STATS_BASIC, 8},  /* gnet_stats_basic */
        {"tbf", TCA_STATS2, TCA_STATS_QUEUE, 16}, /* gnet_stats_queue */
        {"tbf", 0, TCA_STATS, 20},                /* tc_stats */
        {"netem", 0, TCA_OPTIONS, 8},             /* shorter than tc_netem_qopt */
        {"tbf", 0, TCA_OPTIONS, 2},               /* not even an attribute header */
    };
    unsigned char zeros[64] = {0};
    for (size_t i = 0; i < ARRAY_SIZE(shorts); i++) {
        w = fresh();
        tc_begin(w, RTM_NEWQDISC, 1, 1, 0, TC_H_ROOT, shorts[i].kind);
        if (shorts[i].outer)
            nest_begin(w, shorts[i].outer);
        attr(w, shorts[i].type, zeros, shorts[i].len);
        if (shorts[i].outer)
            nest_end(w);
        msg_end(w);
        expect_garbled(w, 1, shorts[i].kind);
    }
}

/* Every prefix of a valid dump: an error or "more to come", never a read past it. */
static void test_every_truncation(void **state)
{
    (void)state;
    struct nlb *w = fresh();
    build_basic(w, 7);
    tc_begin(w, RTM_NEWQDISC, 7, 8, 0x10000, TC_H_ROOT, "htb");
    msg_end(w);
    done(w, 7);
    for (size_t n = 0; n < w->len; n++) {
        struct collect_qdisc_dump *d = new_dump(7);
        const char *why = NULL;
        int rc = feed_exact(d, w->b, n, &why);
        assert_true(rc == 0 || rc == -1);
        free(d);
    }
}

/* ---- against the real kernel ---- */

static int have_netns; /* the live tests run in a private network namespace */

/* Run a shell command; fail the test if it fails. */
static void sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("'%s' exited with %d", cmd, rc);
}

/*
 * Move this process into a network namespace of its own (needs
 * CAP_SYS_ADMIN and iproute2), so the interfaces made here touch nothing
 * else on the machine and vanish with the process. Returns 0, or -1 with a
 * reason printed.
 */
static int live_setup(void **state)
{
    (void)state;
    if (system("command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1") != 0) {
        print_message("live qdisc tests skipped: ip/tc (iproute2) not installed\n");
        return 0;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        print_message("live qdisc tests skipped: unshare(CLONE_NEWNET): %s (needs root)\n",
                      strerror(errno));
        return 0;
    }
    if (system("ip link add sq0 type veth peer name sq0p 2>/dev/null") != 0) {
        print_message("live qdisc tests skipped: cannot create a veth pair (CAP_NET_ADMIN?)\n");
        return 0;
    }
    have_netns = 1;
    return 0;
}

static int live_teardown(void **state)
{
    (void)state;
    if (have_netns)
        (void)!system("ip link del sq0 2>/dev/null; ip link del sq1 2>/dev/null");
    return 0;
}

static double qvalue(const struct metric_buf *b, const char *name, const char *dev,
                     const char *kind)
{
    char l[128];
    snprintf(l, sizeof(l), "device=\"%s\",kind=\"%s\"", dev, kind);
    return tu_value(b, name, l);
}

/* Send n UDP datagrams of `size` bytes to 198.51.100.3, out through sq0. */
static void send_udp(int n, size_t size)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "198.51.100.3", &to.sin_addr);
    char buf[1500] = {0};
    for (int i = 0; i < n; i++)
        assert_int_equal(sendto(fd, buf, size, 0, (struct sockaddr *)&to, sizeof(to)),
                         (ssize_t)size);
    close(fd);
}

/* Run the setup commands, then one cycle of the qdisc source alone. */
static struct collect *live_collect(const char *setup)
{
    sh(setup);
    const char *keep = "qdisc";
    struct collect *c = tu_collect_only(NULL, &keep, 1);
    assert_int_equal(tu_source_success(collect_last(c), "qdisc"), 1);
    return c;
}

static void test_live_tbf(void **state)
{
    (void)state;
    if (!have_netns)
        skip();
    struct collect *c = live_collect(
        "ip link set sq0 up && ip link set sq0p up && ip addr add 198.51.100.1/24 dev sq0 && "
        "ip neigh add 198.51.100.3 lladdr 02:00:00:00:00:03 dev sq0 nud permanent && "
        "tc qdisc add dev sq0 root tbf rate 1mbit burst 32kbit latency 400ms && "
        "tc qdisc add dev sq0 ingress");
    const struct metric_buf *b = collect_last(c);
    double bytes0 = qvalue(b, "node_qdisc_bytes_total", "sq0", "tbf");
    assert_float_equal(qvalue(b, "sitrep_qdisc_rate_bytes", "sq0", "tbf"), 125000, 0);
    /* The peer's default qdisc; no ingress series (not a root). */
    assert_true(tu_find(b, "node_qdisc_bytes_total", "device=\"sq0p\",kind=\"noqueue\"", NULL));
    assert_false(tu_find(b, "node_qdisc_bytes_total", "device=\"sq0\",kind=\"ingress\"", NULL));
    assert_false(tu_find(b, "sitrep_qdisc_rate_bytes", "device=\"sq0p\",kind=\"noqueue\"", NULL));
    assert_float_equal(tu_value(b, "sitrep_qdisc_skipped", ""), 0, 0);
    assert_int_equal(tu_type(b, "node_qdisc_bytes_total"), METRIC_COUNTER);
    assert_int_equal(tu_type(b, "node_qdisc_backlog"), METRIC_GAUGE);

    /* 20 KB at 1 Mbit/s (125 KB/s) past a 4 KB burst: throttled, none dropped. */
    send_udp(20, 1000);
    const double wire = 1000 + 8 + 20 + 14; /* UDP, IPv4, Ethernet headers */
    double bytes = bytes0, sent_or_queued = 0;
    for (int i = 0; i < 40; i++) {
        collect_once(c, 2000 + 1000 * i);
        b = collect_last(c);
        bytes = qvalue(b, "node_qdisc_bytes_total", "sq0", "tbf");
        double backlog = qvalue(b, "node_qdisc_backlog", "sq0", "tbf");
        if (!sent_or_queued)
            sent_or_queued = bytes - bytes0 + backlog;
        if (bytes - bytes0 >= 20 * wire)
            break;
        usleep(50000);
    }
    assert_true(sent_or_queued >= 20 * wire);
    assert_true(bytes - bytes0 >= 20 * wire);
    assert_true(qvalue(b, "node_qdisc_packets_total", "sq0", "tbf") >= 20);
    assert_true(qvalue(b, "node_qdisc_overlimits_total", "sq0", "tbf") > 0);
    assert_float_equal(qvalue(b, "node_qdisc_drops_total", "sq0", "tbf"), 0, 0);
    collect_free(c);
}

static void test_live_htb(void **state)
{
    (void)state;
    if (!have_netns)
        skip();
    struct collect *c =
        live_collect("ip link add sq1 type veth peer name sq1p && "
                     "tc qdisc add dev sq1 root handle 1: htb default 10 && "
                     "tc class add dev sq1 parent 1: classid 1:1 htb rate 10mbit ceil 20mbit && "
                     "tc class add dev sq1 parent 1:1 classid 1:10 htb rate 1mbit ceil 10mbit && "
                     "tc class add dev sq1 parent 1: classid 1:2 htb rate 5mbit ceil 3mbit");
    const struct metric_buf *b = collect_last(c);
    /* 10mbit + min(5mbit, 3mbit), in bytes per second. */
    assert_float_equal(qvalue(b, "sitrep_qdisc_rate_bytes", "sq1", "htb"), 1250000 + 375000, 0);
    /* Changing the shaping shows on the next tick. */
    sh("tc qdisc replace dev sq1 root tbf rate 8mbit burst 32kbit latency 100ms");
    collect_once(c, 2000);
    b = collect_last(c);
    assert_float_equal(qvalue(b, "sitrep_qdisc_rate_bytes", "sq1", "tbf"), 1000000, 0);
    assert_false(tu_find(b, "sitrep_qdisc_rate_bytes", "device=\"sq1\",kind=\"htb\"", NULL));
    /* A vanished device just drops out. */
    sh("ip link del sq1");
    collect_once(c, 3000);
    b = collect_last(c);
    assert_int_equal(tu_source_success(b, "qdisc"), 1);
    assert_false(tu_find(b, "sitrep_qdisc_rate_bytes", "device=\"sq1\",kind=\"tbf\"", NULL));
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest parse[] = {
        cmocka_unit_test(test_roots),         cmocka_unit_test(test_split_and_stale),
        cmocka_unit_test(test_wide_counters), cmocka_unit_test(test_netem_rate),
        cmocka_unit_test(test_htb_classes),   cmocka_unit_test(test_cap),
        cmocka_unit_test(test_kernel_error),  cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_bad_fields),    cmocka_unit_test(test_every_truncation),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_live_tbf),
        cmocka_unit_test(test_live_htb),
    };
    int rc = cmocka_run_group_tests(parse, NULL, NULL);
    return rc | cmocka_run_group_tests(live, live_setup, live_teardown);
}
