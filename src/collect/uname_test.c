/*
 * uname_test.c: uname source: node_uname_info against uname(2) on this
 * host, node_os_info/node_os_version against recorded and hand-written
 * os-release files below a fixture rootfs (quoting, comments, the
 * /usr/lib fallback, a garbled and an absent file), and the caching of
 * os-release across ticks.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

/* One cycle with only the uname and os sources, os-release read below rootfs. */
static struct collect *run(const char *rootfs)
{
    struct collect_opts o = {.rootfs = rootfs};
    return tu_collect_only_fixture("host1/proc", &o, (const char *const[]){"uname", "os"}, 2);
}

static void check_uname(const struct metric_buf *b)
{
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    char want[2048];
    snprintf(want, sizeof(want),
             "domainname=\"%s\",machine=\"%s\",nodename=\"%s\",release=\"%s\",sysname=\"%s\","
             "version=\"%s\"",
             u.domainname, u.machine, u.nodename, u.release, u.sysname, u.version);
    assert_float_equal(tu_value(b, "node_uname_info", want), 1, 0);
    assert_int_equal(tu_count(b, "node_uname_info"), 1);
}

/*
 * The value of KEY in an os-release fixture whose values are plain (quoted
 * or not, no escapes), parsed here independently; "" if absent.
 */
static void plain_value(const char *rel, const char *key, char *out, size_t cap)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    char line[512];
    out[0] = '\0';
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) != 0 || line[kl] != '=')
            continue;
        char *v = line + kl + 1;
        v[strcspn(v, "\n")] = '\0';
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v[n - 1] = '\0';
            v++;
        }
        snprintf(out, cap, "%s", v);
    }
    fclose(f);
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = run(fixture("host1"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "uname"), 1);
    assert_int_equal(tu_source_success(b, "os"), 1);
    check_uname(b);
    static const char *const keys[] = {
        "BUILD_ID",    "ID",      "ID_LIKE",    "IMAGE_ID", "IMAGE_VERSION",    "NAME",
        "PRETTY_NAME", "VARIANT", "VARIANT_ID", "VERSION",  "VERSION_CODENAME", "VERSION_ID"};
    static const char *const labels[] = {
        "build_id",    "id",      "id_like",    "image_id", "image_version",    "name",
        "pretty_name", "variant", "variant_id", "version",  "version_codename", "version_id"};
    char want[4096], v[512];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        plain_value("host1/etc/os-release", keys[i], v, sizeof(v));
        n +=
            (size_t)snprintf(want + n, sizeof(want) - n, "%s%s=\"%s\"", i ? "," : "", labels[i], v);
    }
    assert_float_equal(tu_value(b, "node_os_info", want), 1, 0);
    char id[128], id_like[128], name[128];
    plain_value("host1/etc/os-release", "ID", id, sizeof(id));
    plain_value("host1/etc/os-release", "ID_LIKE", id_like, sizeof(id_like));
    plain_value("host1/etc/os-release", "NAME", name, sizeof(name));
    plain_value("host1/etc/os-release", "VERSION_ID", v, sizeof(v));
    snprintf(want, sizeof(want), "id=\"%s\",id_like=\"%s\",name=\"%s\"", id, id_like, name);
    assert_float_equal(tu_value(b, "node_os_version", want), strtod(v, NULL), 1e-9);
    collect_free(c);
}

static void test_quoting(void **state)
{
    (void)state;
    struct collect *c = run(fixture("odd-os"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "os"), 1);
    /* Known text of odd-os/etc/os-release: escaped quotes, single quotes,
     * trailing comments, "export", an unknown key. */
    assert_float_equal(
        tu_value(b, "node_os_info",
                 "build_id=\"20230801\",id=\"ubuntu\",id_like=\"debian\",image_id=\"\","
                 "image_version=\"\",name=\"Ubuntu\",pretty_name=\"Ubuntu 22.04.3 LTS\","
                 "variant=\"Server Edition\",variant_id=\"\","
                 "version=\"22.04.3 LTS (Jammy \"Jellyfish\")\",version_codename=\"jammy\","
                 "version_id=\"22.04\""),
        1, 0);
    assert_float_equal(
        tu_value(b, "node_os_version", "id=\"ubuntu\",id_like=\"debian\",name=\"Ubuntu\""), 22.04,
        1e-9);
    collect_free(c);
}

static void test_usr_lib_fallback(void **state)
{
    (void)state;
    struct collect *c = run(fixture("usrlib-os"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "os"), 1);
    assert_float_equal(
        tu_value(b, "node_os_info",
                 "build_id=\"rolling\",id=\"arch\",id_like=\"\",image_id=\"archlinux\","
                 "image_version=\"20240101.0.1\",name=\"Arch Linux\",pretty_name=\"Arch Linux\","
                 "variant=\"\",variant_id=\"\",version=\"\",version_codename=\"\",version_id=\"\""),
        1, 0);
    /* No VERSION_ID: node_exporter emits no version sample either. */
    assert_int_equal(tu_count(b, "node_os_version"), 0);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    struct collect *c = run(fixture("garbled-os"));
    const struct metric_buf *b = collect_last(c);
    /* The os source fails; uname, a source of its own, is unaffected. */
    tu_assert_source_failed(b, "os", 1, "node_os_");
    assert_int_equal(tu_source_success(b, "uname"), 1);
    check_uname(b);
    /* Failing every tick, not only the one that read the file. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_source_errors(b, "os"), 2);
    collect_free(c);
}

static void test_absent(void **state)
{
    (void)state;
    /* A rootfs without os-release: the os source is missing, uname is not. */
    struct collect *c = run(fixture("odd-softnet"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "uname"), 1);
    assert_int_equal(tu_source_success(b, "os"), 0);
    check_uname(b);
    assert_int_equal(tu_count(b, "node_os_info"), 0);
    collect_free(c);
}

static void test_read_once(void **state)
{
    (void)state;
    char dir[] = "/tmp/sitrep-uname-test-XXXXXX", etc[64], file[96];
    assert_non_null(mkdtemp(dir));
    snprintf(etc, sizeof(etc), "%s/etc", dir);
    snprintf(file, sizeof(file), "%s/os-release", etc);
    assert_int_equal(mkdir(etc, 0700), 0);
    tu_write_file(file, "ID=first\nVERSION_ID=1.5\n");
    struct collect *c = run(dir);
    const struct metric_buf *b = collect_last(c);
    assert_float_equal(tu_value(b, "node_os_version", "id=\"first\",id_like=\"\",name=\"\""), 1.5,
                       0);
    /* os-release does not change at runtime: a rewrite is not seen. */
    tu_write_file(file, "ID=second\nVERSION_ID=2\n");
    for (int i = 2; i <= 3; i++)
        collect_once(c, i * 1000);
    b = collect_last(c);
    assert_float_equal(tu_value(b, "node_os_version", "id=\"first\",id_like=\"\",name=\"\""), 1.5,
                       0);
    check_uname(b);
    collect_free(c);
    unlink(file);
    rmdir(etc);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_usr_lib_fallback),
        cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_read_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
