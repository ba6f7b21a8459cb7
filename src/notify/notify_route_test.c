/*
 * notify_route_test.c: the routing tree as Alertmanager walks it: deepest
 * match wins, `continue` fans out, children inherit receiver, group_by and
 * timers, and route keys read as Alertmanager prints them.
 */
#include "testutil.h"
#include "notify/notify_internal.h"

static const char tree[] =
    "route:\n"
    "  receiver: default\n"
    "  group_by: [alertname]\n"
    "  group_wait: 10s\n"
    "  routes:\n"
    "    - matchers: [severity=page]\n" /* 0 */
    "      receiver: pager\n"
    "      continue: true\n"
    "      repeat_interval: 1h\n"
    "    - matchers: ['team=~\"db|storage\"']\n" /* 1 */
    "      receiver: dba\n"
    "      group_by: ['...']\n"
    "      routes:\n"
    "        - matchers: [alertname=DiskFull]\n" /* 1.0: inherits dba and group_by ... */
    "          group_wait: 1s\n"
    "        - matchers: [alertname=Backup]\n" /* 1.1 */
    "          receiver: backup\n"
    "          group_by: []\n"
    "    - matchers: [team=web]\n" /* 2: after 1, reached only if 1 fails */
    "      receiver: web\n"
    "receivers: [{name: default}, {name: pager}, {name: dba}, {name: backup}, {name: web}]\n";

struct fixture {
    struct notify_config cfg;
    struct notify__routes rt;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct sbuf errors;
    sbuf_init(&errors, 0);
    notify_config_defaults(&f->cfg);
    if (notify_config_parse(&f->cfg, "t.yml", tree, &errors) < 0)
        fail_msg("%s", errors.buf);
    sbuf_release(&errors);
    notify__routes_build(&f->rt, &f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    notify__routes_free(&f->rt);
    notify_config_release(&f->cfg);
    free(f);
    return 0;
}

/* The receivers labels (as "k=v,k=v") route to, joined with spaces. */
static const char *route(struct fixture *f, const char *labels, const struct notify__route **first)
{
    static char out[256];
    struct notify_label l[16];
    char buf[256];
    size_t n = 0;
    snprintf(buf, sizeof(buf), "%s", labels);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        *eq = '\0';
        l[n++] = (struct notify_label){kv, eq + 1};
    }
    struct notify__lset set;
    assert_int_equal(notify__lset_copy(&set, l, n), 0);
    const struct notify__route *r[8];
    size_t nr = notify__routes_match(&f->rt, &set, r, 8);
    notify__lset_free(&set);
    out[0] = '\0';
    for (size_t i = 0; i < nr; i++) {
        strncat(out, i ? " " : "", sizeof(out) - strlen(out) - 1);
        strncat(out, r[i]->receiver_name, sizeof(out) - strlen(out) - 1);
    }
    if (first)
        *first = nr ? r[0] : NULL;
    return out;
}

static void test_match(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(route(f, "alertname=X", NULL), "default");
    assert_string_equal(route(f, "alertname=X,team=web", NULL), "web");
    assert_string_equal(route(f, "alertname=X,team=db", NULL), "dba");
    /* continue on the page route: it and the next match both get it */
    assert_string_equal(route(f, "alertname=X,severity=page,team=web", NULL), "pager web");
    assert_string_equal(route(f, "alertname=X,severity=page", NULL), "pager");
    /* deepest match: the child wins, and no continue stops at the first child */
    assert_string_equal(route(f, "alertname=DiskFull,team=storage", NULL), "dba");
    assert_string_equal(route(f, "alertname=Backup,team=db", NULL), "backup");
    /* team=db matched route 1, which has no continue: route 2 is never tried */
    assert_string_equal(route(f, "alertname=Backup,team=db,severity=page", NULL), "pager backup");
}

static void test_inheritance(void **state)
{
    struct fixture *f = *state;
    const struct notify__route *r;
    route(f, "alertname=X", &r);
    assert_int_equal(r->group_wait_ms, 10000);
    assert_int_equal(r->group_interval_ms, 300000); /* Alertmanager's default */
    assert_int_equal(r->repeat_interval_ms, 4 * 3600000);
    assert_int_equal(r->ngroup_by, 1);
    assert_string_equal(r->key, "{}");
    route(f, "severity=page", &r);
    assert_int_equal(r->repeat_interval_ms, 3600000);
    assert_int_equal(r->group_wait_ms, 10000); /* from the root */
    assert_string_equal(r->key, "{}/{severity=\"page\"}");
    route(f, "alertname=DiskFull,team=db", &r);
    assert_string_equal(r->receiver_name, "dba"); /* from the parent */
    assert_true(r->group_by_all);                 /* from the parent */
    assert_int_equal(r->group_wait_ms, 1000);
    assert_string_equal(r->key, "{}/{team=~\"db|storage\"}/{alertname=\"DiskFull\"}");
    route(f, "alertname=Backup,team=db", &r);
    assert_false(r->group_by_all); /* group_by: [] overrides '...' */
    assert_int_equal(r->ngroup_by, 0);
    assert_non_null(r->receiver);
    assert_string_equal(r->receiver->name, "backup");
    /* Alertmanager's numbering: children before parents, depth first. */
    assert_int_equal(f->rt.count, 6);
    assert_int_equal(f->rt.root->idx, 5);
    assert_int_equal(f->rt.root->children[0].idx, 0);
    assert_int_equal(f->rt.root->children[1].children[0].idx, 1);
    assert_int_equal(f->rt.root->children[1].idx, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inheritance, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
