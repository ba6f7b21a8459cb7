/*
 * rules_builtin_test.c: the default rule pack as compiled into the binary.
 * Every file parses; every alerting rule has a severity of page or ticket
 * and non-empty summary and runbook annotations; the embedded bytes equal
 * rules/ in the source tree; every rule evaluates without error against a
 * store filled by the real collector, and every annotation expands over it
 * (the queries of templates included; a summary stays one line); and rules_load: the pack ahead of
 * the user's files with "builtin:" names, `disable`, a user group replacing
 * the built-in group of its name, no pack when it is off, errors.
 */
#include "testutil.h"
#include "collect/collect.h"
#include "rules/rules_internal.h"
#include "tsdb/tsdb.h"

#include <unistd.h>

#define T0 1700000000000LL

static const char *label(const struct rules_label *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return l[i].value;
    return NULL;
}

static struct rules_set *must_load(const struct rules_sources *src)
{
    struct rules_set *set = (struct rules_set *)&set;
    struct sbuf errors;
    sbuf_init(&errors, 0);
    if (rules_load(&set, src, &errors) < 0)
        fail_msg("%s", errors.buf);
    sbuf_release(&errors);
    return set;
}

static void test_pack_parses_and_is_annotated(void **state)
{
    (void)state;
    assert_true(rules_builtin_count() >= 3);
    size_t alerts = 0;
    for (size_t i = 0; i < rules_builtin_count(); i++) {
        size_t len;
        const char *text = rules_builtin_text(i, &len);
        assert_non_null(text);
        assert_int_equal(strlen(text), len);
        if (i)
            assert_true(strcmp(rules_builtin_name(i - 1), rules_builtin_name(i)) < 0);
        struct rules_set *set = NULL;
        struct sbuf errors;
        sbuf_init(&errors, 0);
        if (rules_parse(&set, rules_builtin_name(i), text, len, 1000, &errors) < 0)
            fail_msg("%s", errors.buf);
        assert_true(rules_set_rules(set) > 0);
        for (size_t g = 0; g < set->ngroups; g++)
            for (size_t k = 0; k < set->groups[g].nrules; k++) {
                const struct rules__rule *r = &set->groups[g].rules[k];
                if (!r->alerting)
                    continue;
                alerts++;
                const char *sev = label(r->labels, r->nlabels, "severity");
                const char *sum = label(r->ann, r->nann, "summary");
                const char *rb = label(r->ann, r->nann, "runbook");
                if (!sev || (strcmp(sev, "page") != 0 && strcmp(sev, "ticket") != 0))
                    fail_msg("%s: %s: severity must be page or ticket", rules_builtin_name(i),
                             r->name);
                if (!sum || !*sum || !rb || !*rb)
                    fail_msg("%s: %s: needs summary and runbook annotations", rules_builtin_name(i),
                             r->name);
            }
        rules_set_free(set);
        sbuf_release(&errors);
    }
    assert_true(alerts >= 10);
}

/* What is compiled in is what is in rules/ (the build regenerates it on change). */
static void test_pack_is_the_source_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < rules_builtin_count(); i++) {
        char rel[256];
        snprintf(rel, sizeof(rel), "../../rules/%s", rules_builtin_name(i));
        FILE *f = fopen(fixture(rel), "rb");
        assert_non_null(f);
        size_t len;
        const char *text = rules_builtin_text(i, &len);
        char *buf = xmalloc(len + 2);
        size_t got = fread(buf, 1, len + 1, f);
        fclose(f);
        assert_int_equal(got, len);
        assert_memory_equal(buf, text, len);
        free(buf);
    }
}

static void test_find(void **state)
{
    (void)state;
    int k = rules_builtin_find("host.yml");
    assert_true(k >= 0);
    assert_int_equal(rules_builtin_find("builtin:host.yml"), k);
    assert_int_equal(rules_builtin_find("nope.yml"), -1);
    assert_int_equal(rules_builtin_find("builtin:"), -1);
    assert_null(rules_builtin_name(rules_builtin_count()));
    assert_null(rules_builtin_text(rules_builtin_count(), NULL));
    assert_int_equal(rules_builtin_has_rule("CPUSaturated"), 1);
    assert_int_equal(rules_builtin_has_rule("cpusaturated"), 0);
    assert_int_equal(rules_builtin_has_rule(""), 0);
}

/* The group and rule index of the rule named name, or fails. */
static const struct rules__group *group_of(const struct rules_set *set, const char *name)
{
    for (size_t g = 0; g < set->ngroups; g++)
        for (size_t i = 0; i < set->groups[g].nrules; i++)
            if (strcmp(set->groups[g].rules[i].name, name) == 0)
                return &set->groups[g];
    return NULL;
}

static void test_load(void **state)
{
    (void)state;
    struct rules_set *pack = NULL;
    struct sbuf errors;
    sbuf_init(&errors, 0);
    assert_int_equal(rules_builtin_parse(&pack, 1000, &errors), 0);
    size_t ngroups = rules_set_groups(pack), nrules = rules_set_rules(pack);

    /* the pack alone, every file named builtin:FILE */
    struct rules_set *set = must_load(&(struct rules_sources){.builtin = 1});
    assert_int_equal(rules_set_groups(set), ngroups);
    assert_int_equal(rules_set_rules(set), nrules);
    for (size_t g = 0; g < set->ngroups; g++)
        assert_true(strncmp(set->groups[g].file, "builtin:", 8) == 0);
    assert_string_equal(group_of(set, "CPUSaturated")->file, "builtin:host.yml");
    rules_set_free(set);

    /* disable: exactly the rules named go */
    const char *off[] = {"CPUSaturated", "OOMKill"};
    set = must_load(&(struct rules_sources){.builtin = 1, .disable = off, .ndisable = 2});
    assert_int_equal(rules_set_rules(set), nrules - 2);
    assert_null(group_of(set, "CPUSaturated"));
    assert_null(group_of(set, "OOMKill"));
    assert_non_null(group_of(set, "MemoryPressureSustained"));
    rules_set_free(set);

    /* off: none of it */
    set = must_load(&(struct rules_sources){.builtin = 0, .disable = off, .ndisable = 2});
    assert_int_equal(rules_set_groups(set), 0);
    rules_set_free(set);

    /* a user group named as a built-in one replaces it; the rest of the pack stays */
    const char *cpu_group = group_of(pack, "CPUSaturated")->name;
    char *dir = xstrdup(tu_tmpdir("rules-builtin"));
    char path[256], yml[512];
    snprintf(path, sizeof(path), "%s/mine.yml", dir);
    snprintf(yml, sizeof(yml),
             "groups:\n  - name: %s\n    rules:\n      - alert: CPUSaturated\n"
             "        expr: vector(1) > 2\n  - name: extra\n    rules:\n"
             "      - record: e:x\n        expr: vector(1)\n",
             cpu_group);
    tu_write_file(path, yml);
    const char *pat[] = {"*.yml"};
    set = must_load(
        &(struct rules_sources){.builtin = 1, .patterns = pat, .npatterns = 1, .base_dir = dir});
    size_t cpu_rules = group_of(pack, "CPUSaturated")->nrules;
    assert_int_equal(rules_set_groups(set), ngroups + 1);
    assert_int_equal(rules_set_rules(set), nrules - cpu_rules + 2);
    assert_string_equal(group_of(set, "CPUSaturated")->file, path);
    assert_string_equal(group_of(set, "e:x")->file, path);
    assert_string_equal(group_of(set, "MemoryPressureSustained")->file, "builtin:host.yml");
    rules_set_free(set);

    /* an error in a user file: nothing loaded, the position said */
    tu_write_file(path, "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n");
    set = (struct rules_set *)&set;
    sbuf_reset(&errors);
    assert_int_equal(rules_load(&set,
                                &(struct rules_sources){
                                    .builtin = 1, .patterns = pat, .npatterns = 1, .base_dir = dir},
                                &errors),
                     -1);
    assert_null(set);
    assert_non_null(strstr(errors.buf, "mine.yml:5:15: could not parse expression"));
    tu_rmrf(dir);
    free(dir);
    rules_set_free(pack);
    sbuf_release(&errors);
}

static int64_t fake_now(void *ctx)
{
    return *(int64_t *)ctx;
}

static void to_store(void *ctx, const struct metric_buf *b)
{
    assert_int_equal(tsdb_append_batch(ctx, "collect", b, NULL), 0);
}

/* Every rule of the pack evaluates cleanly over this host's own series. */
static void test_pack_evaluates(void **state)
{
    (void)state;
    char *dir = xstrdup(tu_tmpdir("rules-builtin"));
    char tdir[256], err[256];
    snprintf(tdir, sizeof(tdir), "%s/tsdb", dir);
    struct tsdb *db;
    assert_int_equal(tsdb_open(&db, &(struct tsdb_opts){.dir = tdir}, err, sizeof(err)), 0);
    struct collect *c = collect_new(&(struct collect_opts){.sink = to_store, .sink_ctx = db});
    int64_t now = T0;
    struct rules *r =
        rules_new(&(struct rules_opts){.db = db, .now_ms = fake_now, .clock_ctx = &now},
                  must_load(&(struct rules_sources){.builtin = 1}));
    for (int i = 0; i < 90; i++, now += 1000) {
        collect_once(c, now);
        rules_tick(r);
    }
    size_t n = 0;
    for (size_t g = 0; g < r->set->ngroups; g++)
        for (size_t i = 0; i < r->set->groups[g].nrules; i++, n++) {
            const struct rules__rule *ru = &r->set->groups[g].rules[i];
            if (ru->health != 1)
                fail_msg("%s: health %d: %s", ru->name, ru->health, ru->last_error);
        }
    assert_true(n > 0);
    /* every annotation expands, its queries included, over the same series (alerts need
     * not fire for that: the alert's labels are made up) */
    const struct rules_tmpl_label ls[] = {{"service", "web"}, {"target", "http://127.0.0.1/"}};
    struct rules__tmpl_query q = {.db = db,
                                  .ts = now - 1000,
                                  .deadline_ns = util_mono_ns() + 10000000000LL,
                                  .budget_ms = 10000};
    const struct rules_tmpl_data d = {
        .value = 0.5, .labels = ls, .nlabels = 2, .query = rules__tmpl_query, .query_ctx = &q};
    for (size_t g = 0; g < r->set->ngroups; g++)
        for (size_t i = 0; i < r->set->groups[g].nrules; i++) {
            const struct rules__rule *ru = &r->set->groups[g].rules[i];
            for (size_t k = 0; k < ru->nann; k++) {
                struct sbuf out;
                sbuf_init(&out, 0);
                if (rules_template_expand(ru->ann[k].value, &d, &out, err, sizeof(err)) < 0)
                    fail_msg("%s: annotation %s: %s", ru->name, ru->ann[k].name, err);
                if (strcmp(ru->ann[k].name, "summary") == 0 && strchr(out.buf, '\n'))
                    fail_msg("%s: the summary is more than one line", ru->name);
                if (getenv("RULES_SHOW_ANNOTATIONS"))
                    printf("%s %s: %s\n", ru->name, ru->ann[k].name, out.buf);
                sbuf_release(&out);
            }
        }
    rules__tmpl_query_release(&q);
    rules_free(r);
    collect_free(c);
    tsdb_close(db);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_parses_and_is_annotated),
        cmocka_unit_test(test_pack_is_the_source_files),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_pack_evaluates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
