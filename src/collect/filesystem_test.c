/*
 * filesystem_test.c: mount table + statfs source. The mount tables are
 * fixtures but the mount points are looked up on this machine, so values
 * are checked against statvfs() done here: "/" and "/tmp" exist everywhere,
 * the rest may or may not (then only device_error 1 is reported). Also:
 * exclusions by type and mount point, stacked mounts, escapes, which table
 * is read, the rootfs prefix, and garbled, truncated and missing tables.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <sys/statvfs.h>

/* Run one cycle on `root` with only the filesystem source enabled. */
static struct collect *run(const char *root, const char *rootfs)
{
    struct collect_opts o = {.proc_root = root, .rootfs = rootfs};
    return tu_collect_only(&o, (const char *const[]){"filesystem"}, 1);
}

/*
 * Check one filesystem's series against statvfs(path) taken now. Free space
 * and free inodes move while other tests write to the disk: some slack.
 * Returns 1 if statvfs worked (7 series expected), else 0 (device_error only).
 */
static int check_fs(const struct metric_buf *b, const char *device, const char *fstype,
                    const char *mountpoint, const char *path, int readonly)
{
    char l[512];
    snprintf(l, sizeof(l), "device=\"%s\",fstype=\"%s\",mountpoint=\"%s\"", device, fstype,
             mountpoint);
    struct statvfs st;
    if (statvfs(path, &st) < 0) {
        assert_float_equal(tu_value(b, "node_filesystem_device_error", l), 1, 0);
        assert_false(tu_find(b, "node_filesystem_size_bytes", l, NULL));
        assert_false(tu_find(b, "node_filesystem_readonly", l, NULL));
        return 0;
    }
    double unit = (double)st.f_frsize;
    assert_float_equal(tu_value(b, "node_filesystem_device_error", l), 0, 0);
    assert_float_equal(tu_value(b, "node_filesystem_size_bytes", l), (double)st.f_blocks * unit, 0);
    assert_float_equal(tu_value(b, "node_filesystem_files", l), (double)st.f_files, 0);
    assert_float_equal(tu_value(b, "node_filesystem_free_bytes", l), (double)st.f_bfree * unit,
                       256.0 * 1024 * 1024);
    assert_float_equal(tu_value(b, "node_filesystem_avail_bytes", l), (double)st.f_bavail * unit,
                       256.0 * 1024 * 1024);
    assert_float_equal(tu_value(b, "node_filesystem_files_free", l), (double)st.f_ffree, 10000);
    assert_float_equal(tu_value(b, "node_filesystem_readonly", l), readonly, 0);
    return 1;
}

static void test_mounts(void **state)
{
    (void)state;
    struct collect *c = run(fixture("fs-mounts/proc"), NULL);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "filesystem"), 1);
    /* What survives of fs-mounts/proc/mounts (see the fixture): */
    static const struct {
        const char *device, *fstype, *mountpoint, *path;
        int ro;
    } want[] = {
        /* "rootfs /" is covered by the later "/dev/vda /". */
        {"/dev/vda", "ext4", "/", "/", 0},
        {"tmpfs", "tmpfs", "/tmp", "/tmp", 1},
        /* Only what is below /run/credentials/ and /var/lib/docker/ is excluded. */
        {"tmpfs", "tmpfs", "/run/credentials", "/run/credentials", 0},
        {"tmpfs", "tmpfs", "/var/lib/docker", "/var/lib/docker", 0},
        {"/dev/sdz1", "ext4", "/no/such dir", "/no/such dir", 0},
        /* /dev and /sys are excluded, not everything starting with them. */
        {"tmpfs", "tmpfs", "/devices", "/devices", 0},
        {"tmpfs", "tmpfs", "/sysfoo", "/sysfoo", 0},
        {"tmpfs", "tmpfs", "/tmp/tab\there", "/tmp/tab\there", 0},
        /* Two mounts on /srv: the later one is on top. */
        {"/dev/vdc", "ext4", "/srv", "/srv", 0},
    };
    size_t nok = 0;
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        nok += (size_t)check_fs(b, want[i].device, want[i].fstype, want[i].mountpoint, want[i].path,
                                want[i].ro);
    assert_true(nok >= 2); /* "/" and "/tmp" at least */
    assert_int_equal(tu_count(b, "node_filesystem_device_error"), ARRAY_SIZE(want));
    assert_int_equal(tu_count_prefix(b, "node_filesystem_"), ARRAY_SIZE(want) + 6 * nok);
    assert_false(tu_find(b, "node_filesystem_device_error",
                         "device=\"rootfs\",fstype=\"rootfs\",mountpoint=\"/\"", NULL));
    assert_false(tu_find(b, "node_filesystem_device_error",
                         "device=\"/dev/vdb\",fstype=\"xfs\",mountpoint=\"/srv\"", NULL));
    assert_float_equal(tu_value(b, "node_filesystem_device_error",
                                "device=\"/dev/sdz1\",fstype=\"ext4\",mountpoint=\"/no/such dir\""),
                       1, 0);
    tu_assert_prefix_type(b, "node_filesystem_", METRIC_GAUGE);

    /* The next tick reuses the state and emits the same shape. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_count_prefix(b, "node_filesystem_"), ARRAY_SIZE(want) + 6 * nok);
    check_fs(b, "/dev/vda", "ext4", "/", "/", 0);
    collect_free(c);
}

/* The recorded table: its "/" is this machine's "/". */
static void test_host1(void **state)
{
    (void)state;
    struct collect *c = run(fixture("host1/proc"), NULL);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "filesystem"), 1);
    FILE *f = fopen(fixture("host1/proc/mounts"), "r");
    assert_non_null(f);
    char line[1024], dev[256] = "", type[64] = "";
    while (fgets(line, sizeof(line), f)) {
        char d[256], mp[512], t[64];
        if (sscanf(line, "%255s %511s %63s", d, mp, t) == 3 && strcmp(mp, "/") == 0) {
            snprintf(dev, sizeof(dev), "%s", d);
            snprintf(type, sizeof(type), "%s", t);
        }
    }
    fclose(f);
    assert_true(dev[0]);
    assert_int_equal(check_fs(b, dev, type, "/", "/", 0), 1);
    /* Pseudo filesystems and /dev, /proc, /sys are all left out. */
    for (size_t i = 0; i < b->nfams; i++) {
        const struct metric_fam_rec *fr = &b->fams[i];
        if (strcmp(metric_str(b, fr->name), "node_filesystem_device_error") != 0)
            continue;
        for (uint32_t k = 0; k < fr->count; k++) {
            char l[1024];
            tu_labels(b, &b->samples[fr->first + k], l, sizeof(l));
            assert_null(strstr(l, "mountpoint=\"/dev"));
            assert_null(strstr(l, "mountpoint=\"/sys"));
            assert_null(strstr(l, "mountpoint=\"/proc"));
            assert_null(strstr(l, "fstype=\"cgroup"));
        }
    }
    collect_free(c);
}

/* /proc/1/mounts first, then /proc/self/mounts, then /proc/mounts. */
static void test_which_table(void **state)
{
    (void)state;
    struct collect *c = run(fixture("fs-pid1/proc"), NULL);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_count(b, "node_filesystem_device_error"), 1);
    check_fs(b, "/dev/vda", "ext4", "/", "/", 0);
    collect_free(c);

    c = run(fixture("fs-self/proc"), NULL);
    b = collect_last(c);
    assert_int_equal(tu_count(b, "node_filesystem_device_error"), 1);
    check_fs(b, "/dev/self", "btrfs", "/", "/", 1);
    collect_free(c);
}

/* Mount points are looked up below rootfs (a host's / mounted in a container). */
static void test_rootfs(void **state)
{
    (void)state;
    struct collect *c = run(fixture("fs-pid1/proc"), "/tmp");
    const struct metric_buf *b = collect_last(c);
    check_fs(b, "/dev/vda", "ext4", "/", "/tmp/", 0);
    collect_free(c);

    c = run(fixture("fs-pid1/proc"), "/does-not-exist");
    b = collect_last(c);
    assert_float_equal(tu_value(b, "node_filesystem_device_error",
                                "device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\""),
                       1, 0);
    assert_int_equal(tu_count_prefix(b, "node_filesystem_"), 1);
    assert_int_equal(tu_source_success(b, "filesystem"), 1);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = run(fixture(root), NULL);
    /* Nothing half-parsed leaks into the batch. */
    tu_assert_source_failed(collect_last(c), "filesystem", 1, "node_filesystem_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-filesystem/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-filesystem/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* a proc root with no mount table */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mounts),      cmocka_unit_test(test_host1),
        cmocka_unit_test(test_which_table), cmocka_unit_test(test_rootfs),
        cmocka_unit_test(test_garbled),     cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
