/*
 * netclass_test.c: /sys/class/net source against a recorded host, links of
 * every kind (speed unknown, attributes missing, a bonding_masters file),
 * interfaces that come and go between ticks, a garbled attribute, and a
 * missing /sys.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* Run one cycle with proc_root host1 and sys_root `sys`, only netclass enabled. */
static struct collect *run(const char *sys)
{
    struct collect_opts o = {.sys_root = sys};
    return tu_collect_only_fixture("host1/proc", &o, (const char *const[]){"netclass"}, 1);
}

/* Contents of dir/dev/attr without the newline; 0 if absent or empty. */
static int attr(const char *dir, const char *dev, const char *name, char *out, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, dev, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return out[0] != '\0';
}

/*
 * Check every interface below sys/class/net against its files (read here,
 * independently of the source): node_network_up is operstate == "up"; mtu,
 * speed (Mbit/s -> bytes/s, skipped when negative) and carrier are present
 * exactly when their file has a value. Returns the number of interfaces.
 */
static size_t check_dir(const struct metric_buf *b, const char *sys)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/class/net", sys);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t ndevs = 0, nspeed = 0, nmtu = 0, ncarrier = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || de->d_type == DT_REG)
            continue;
        char labels[300], v[64];
        snprintf(labels, sizeof(labels), "device=\"%s\"", de->d_name);
        attr(dir, de->d_name, "operstate", v, sizeof(v));
        assert_float_equal(tu_value(b, "node_network_up", labels), strcmp(v, "up") == 0, 0);
        if (attr(dir, de->d_name, "mtu", v, sizeof(v))) {
            assert_float_equal(tu_value(b, "node_network_mtu_bytes", labels), atof(v), 0);
            nmtu++;
        } else {
            assert_false(tu_find(b, "node_network_mtu_bytes", labels, NULL));
        }
        if (attr(dir, de->d_name, "speed", v, sizeof(v)) && atof(v) >= 0) {
            assert_float_equal(tu_value(b, "node_network_speed_bytes", labels), atof(v) * 1e6 / 8,
                               0);
            nspeed++;
        } else {
            assert_false(tu_find(b, "node_network_speed_bytes", labels, NULL));
        }
        if (attr(dir, de->d_name, "carrier", v, sizeof(v))) {
            assert_float_equal(tu_value(b, "node_network_carrier", labels), atof(v), 0);
            ncarrier++;
        } else {
            assert_false(tu_find(b, "node_network_carrier", labels, NULL));
        }
        ndevs++;
    }
    closedir(d);
    assert_int_equal(tu_count(b, "node_network_up"), ndevs);
    assert_int_equal(tu_count(b, "node_network_mtu_bytes"), nmtu);
    assert_int_equal(tu_count(b, "node_network_speed_bytes"), nspeed);
    assert_int_equal(tu_count(b, "node_network_carrier"), ncarrier);
    return ndevs;
}

static void test_host1(void **state)
{
    (void)state;
    char sys[4096];
    snprintf(sys, sizeof(sys), "%s", fixture("host1/sys"));
    struct collect *c = run(sys);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "netclass"), 1);
    size_t ndevs = check_dir(b, sys);
    assert_true(ndevs >= 2);
    assert_true(tu_find(b, "node_network_up", "device=\"lo\"", NULL));
    /* The next tick rewinds the same directory and finds the same links. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(check_dir(b, sys), ndevs);
    collect_free(c);
}

static void test_odd_links(void **state)
{
    (void)state;
    char sys[4096];
    snprintf(sys, sizeof(sys), "%s", fixture("odd-netclass/sys"));
    struct collect *c = run(sys);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "netclass"), 1);
    assert_int_equal(check_dir(b, sys), 4); /* bonding_masters is not a link */
    assert_float_equal(tu_value(b, "node_network_speed_bytes", "device=\"eth1\""), 125000000, 0);
    assert_float_equal(tu_value(b, "node_network_speed_bytes", "device=\"bond0\""), 3125000000.0,
                       0);
    assert_float_equal(tu_value(b, "node_network_up", "device=\"bond0\""), 1, 0);
    assert_float_equal(tu_value(b, "node_network_up", "device=\"wlan0\""), 0, 0);
    assert_false(tu_find(b, "node_network_speed_bytes", "device=\"wlan0\"", NULL));
    assert_float_equal(tu_value(b, "node_network_carrier", "device=\"wlan0\""), 0, 0);
    assert_false(tu_find(b, "node_network_carrier", "device=\"veth0\"", NULL));
    assert_float_equal(tu_value(b, "node_network_mtu_bytes", "device=\"eth1\""), 9000, 0);
    assert_false(tu_find(b, "node_network_up", "device=\"bonding_masters\"", NULL));
    collect_free(c);
}

static void add_link(const char *root, const char *dev, const char *operstate)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/class/net/%s", root, dev);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/class/net/%s/operstate", root, dev);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", operstate);
    fclose(f);
}

static void del_link(const char *root, const char *dev)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/class/net/%s/operstate", root, dev);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/class/net/%s", root, dev);
    assert_int_equal(rmdir(path), 0);
}

/* Links appear and vanish between ticks; the kept-open directory sees it. */
static void test_come_and_go(void **state)
{
    (void)state;
    char root[] = "/tmp/sitrep-netclass-XXXXXX", path[128];
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/class", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/class/net", root);
    assert_int_equal(mkdir(path, 0700), 0);
    add_link(root, "lo", "unknown");
    add_link(root, "veth0", "up");
    struct collect *c = run(root);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_count(b, "node_network_up"), 2);
    assert_float_equal(tu_value(b, "node_network_up", "device=\"veth0\""), 1, 0);

    del_link(root, "veth0");
    char dev[16];
    for (int i = 1; i <= 40; i++) {
        snprintf(dev, sizeof(dev), "veth%d", i);
        add_link(root, dev, "down");
    }
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_count(b, "node_network_up"), 41);
    assert_false(tu_find(b, "node_network_up", "device=\"veth0\"", NULL));
    assert_float_equal(tu_value(b, "node_network_up", "device=\"veth40\""), 0, 0);

    for (int i = 1; i <= 40; i++) {
        snprintf(dev, sizeof(dev), "veth%d", i);
        del_link(root, dev);
    }
    collect_once(c, 3000);
    b = collect_last(c);
    assert_int_equal(tu_count(b, "node_network_up"), 1);
    assert_float_equal(tu_value(b, "node_network_up", "device=\"lo\""), 0, 0);
    assert_int_equal(tu_source_errors(b, "netclass"), 0);
    collect_free(c);
    del_link(root, "lo");
    snprintf(path, sizeof(path), "%s/class/net", root);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/class", root);
    rmdir(path);
    rmdir(root);
}

static void expect_failure(const char *sys, unsigned errors)
{
    struct collect *c = run(sys);
    /* Nothing half-read leaks into the batch. */
    tu_assert_source_failed(collect_last(c), "netclass", errors, "node_network_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure(fixture("garbled-netclass/sys"), 1);
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure(fixture("no-psi"), 1);         /* a sys root without class/net */
    expect_failure(fixture("does-not-exist"), 1); /* no sys root at all */
}

static void set_attr(const char *root, const char *dev, const char *name, const char *value)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/class/net/%s/%s", root, dev, name);
    tu_write_file(path, value);
}

/*
 * Speed and MTU are re-read at least every 10 ticks, and at once when the
 * link's carrier or operstate changes (a renegotiation flips them).
 */
static void test_speed_changes(void **state)
{
    (void)state;
    char root[128], path[256];
    snprintf(root, sizeof(root), "%s", tu_tmpdir("netclass"));
    snprintf(path, sizeof(path), "%s/class", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/class/net", root);
    assert_int_equal(mkdir(path, 0700), 0);
    add_link(root, "eth9", "up");
    set_attr(root, "eth9", "speed", "1000\n");
    set_attr(root, "eth9", "mtu", "1500\n");
    set_attr(root, "eth9", "carrier", "1\n");
    struct collect *c = run(root);
    const char *dev = "device=\"eth9\"";
    assert_float_equal(tu_value(collect_last(c), "node_network_speed_bytes", dev), 125e6, 0);

    /* A quiet change (same carrier and state) shows within 10 ticks. */
    set_attr(root, "eth9", "mtu", "9000\n");
    int seen = 0;
    for (int t = 2; t <= 12 && !seen; t++) {
        collect_once(c, t * 1000);
        seen = tu_value(collect_last(c), "node_network_mtu_bytes", dev) == 9000;
    }
    assert_true(seen);

    /* Renegotiation: carrier drops and comes back at another speed. */
    set_attr(root, "eth9", "carrier", "0\n");
    set_attr(root, "eth9", "speed", "100\n");
    collect_once(c, 20000);
    assert_float_equal(tu_value(collect_last(c), "node_network_speed_bytes", dev), 12.5e6, 0);
    assert_float_equal(tu_value(collect_last(c), "node_network_carrier", dev), 0, 0);
    collect_free(c);
    tu_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),       cmocka_unit_test(test_odd_links),
        cmocka_unit_test(test_come_and_go), cmocka_unit_test(test_speed_changes),
        cmocka_unit_test(test_garbled),     cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
