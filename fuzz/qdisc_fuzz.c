/*
 * qdisc_fuzz.c: libFuzzer target for the rtnetlink qdisc parser
 * (collect__qdisc_feed in src/collect/qdisc.c). The first two bytes (big
 * endian) say where to cut the rest: the part before the cut is fed as a
 * qdisc dump (sequence 1),
 * the part after as the class dump that follows (sequence 2), each copied
 * into a buffer of exactly its size so ASan sees any read past it.
 * Invariants, beyond "no crash":
 *   - feed returns -1, 0 or 1, and -1 always comes with a reason;
 *   - at most COLLECT_QDISC_MAX roots, each with tcm_parent TC_H_ROOT, a
 *     non-empty NUL-terminated kind and an interface index no other root has;
 *   - only tbf, netem and htb roots carry a rate, and a class dump changes
 *     nothing but htb roots' rates.
 * Build and run with fuzz/run.sh.
 */
#include "collect/collect_internal.h"

#include <linux/pkt_sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "qdisc_fuzz: check failed: %s\n", #x);                                 \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static struct collect_qdisc_dump dump, before;

static int feed(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, p, n);
    const char *why = NULL;
    int rc = collect__qdisc_feed(&dump, copy, n, &why);
    free(copy);
    CHECK(rc >= -1 && rc <= 1);
    CHECK(rc != -1 || (why && why[0]));
    CHECK(rc != 1 || dump.done);
    return rc;
}

static void check_roots(void)
{
    CHECK(dump.n <= COLLECT_QDISC_MAX);
    for (size_t i = 0; i < dump.n; i++) {
        const struct collect_qdisc *q = &dump.q[i];
        size_t len = strnlen(q->kind, sizeof(q->kind));
        CHECK(len > 0 && len < sizeof(q->kind));
        CHECK(q->parent == TC_H_ROOT);
        for (size_t j = 0; j < i; j++)
            CHECK(dump.q[j].ifindex != q->ifindex);
        if (strcmp(q->kind, "tbf") && strcmp(q->kind, "netem") && strcmp(q->kind, "htb"))
            CHECK(q->rate == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cut = (size_t)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    if (cut > size)
        cut = size;
    collect__qdisc_begin(&dump, 1, 0);
    int rc = feed(data, cut);
    check_roots();
    if (rc < 0)
        return 0;
    before = dump;
    collect__qdisc_begin(&dump, 2, 1);
    feed(data + cut, size - cut);
    check_roots();
    CHECK(dump.n == before.n && dump.skipped == before.skipped);
    for (size_t i = 0; i < dump.n; i++) {
        struct collect_qdisc a = dump.q[i], b = before.q[i];
        if (strcmp(a.kind, "htb") == 0)
            a.rate = b.rate = 0;
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    }
    return 0;
}
