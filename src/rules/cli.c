/*
 * cli.c: the rules engine's commands. `sitrep check rules` runs the rule
 * file checks (load.c) over files and, with --builtin, over the compiled-in
 * pack; `sitrep test rules` runs rule unit tests (unittest.c) and prints
 * their outcome as promtool does; `sitrep rules builtin` lists the pack, prints its files, or
 * writes them to a folder so a user can copy and edit them (an edited group then replaces the
 * built-in one of the same name: rules_load).
 */
#include "rules/rules_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prints the outcome of one file's check; 0 if it passed. */
static int report(const char *name, int rc, const struct rules_set *set, const struct sbuf *errors)
{
    if (rc < 0) {
        fputs(errors->buf, stderr);
        fprintf(stderr, "%s: FAILED\n", name);
        return 1;
    }
    printf("%s: SUCCESS: %zu rules found\n", name, rules_set_rules(set));
    return 0;
}

int rules_cli_check(int argc, char **argv)
{
    int builtin = argc >= 1 && strcmp(argv[0], "--builtin") == 0;
    if (builtin) {
        argc--;
        argv++;
    }
    if ((argc < 1 && !builtin) ||
        (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))) {
        int help = argc >= 1;
        fputs("Usage: sitrep check rules [--builtin] [FILE...]\n"
              "Validate Prometheus rule files (YAML, every expr as PromQL, every template);\n"
              "print file:line:col: message per problem. --builtin checks the default rule\n"
              "pack compiled into this binary too. Exit status 0 if all are valid, 1\n"
              "otherwise.\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    int bad = 0;
    struct sbuf errors;
    sbuf_init(&errors, 1 << 20);
    for (size_t i = 0; builtin && i < rules_builtin_count(); i++) {
        char name[256];
        size_t len;
        const char *text = rules_builtin_text(i, &len);
        struct rules_set *set = NULL;
        snprintf(name, sizeof(name), "%s%s", RULES_BUILTIN_PREFIX, rules_builtin_name(i));
        sbuf_reset(&errors);
        int rc = rules_parse(&set, name, text, len, 60000, &errors);
        bad |= report(name, rc, set, &errors);
        rules_set_free(set);
    }
    for (int i = 0; i < argc; i++) {
        struct rules_set *set = NULL;
        sbuf_reset(&errors);
        int rc = rules_load_file(&set, argv[i], 60000, &errors);
        bad |= report(argv[i], rc, set, &errors);
        rules_set_free(set);
    }
    sbuf_release(&errors);
    return bad;
}

int rules_cli_test(int argc, char **argv)
{
    int builtin = argc >= 1 && strcmp(argv[0], "--builtin") == 0;
    if (builtin) {
        argc--;
        argv++;
    }
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        int help = argc >= 1;
        fputs("Usage: sitrep test rules [--builtin] TESTFILE...\n"
              "Run rule unit tests written for `promtool test rules`: load each test's\n"
              "input_series into a fresh store, evaluate the rule_files from time 0 every\n"
              "evaluation_interval, and compare the firing alerts (alert_rule_test) and\n"
              "query answers (promql_expr_test) with what the test expects. --builtin adds\n"
              "the built-in rule pack to every test's rule_files. Exit status 0 if every\n"
              "test passed, 1 if one failed, 2 if a file is invalid (file:line:col).\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    /* the engine's own log lines (a rule's error) are reported by the runner instead */
    log_set_level(LOG_ERROR);
    int worst = 0;
    struct sbuf report;
    sbuf_init(&report, 0);
    for (int i = 0; i < argc; i++) {
        printf("Unit Testing: %s\n", argv[i]);
        fflush(stdout);
        sbuf_reset(&report);
        int rc = rules__unittest_file(argv[i], builtin, &report);
        fputs(report.buf, stderr);
        fflush(stderr);
        if (rc == 0)
            puts("  SUCCESS");
        puts("");
        worst = rc > worst ? rc : worst;
    }
    sbuf_release(&report);
    return worst;
}

static const char builtin_usage[] =
    "Usage: sitrep rules builtin                 list the built-in rules\n"
    "       sitrep rules builtin FILE...         print built-in files (host.yml, ...)\n"
    "       sitrep rules builtin --out DIR [--force]\n"
    "                                            write every built-in file into DIR\n"
    "\n"
    "The default rule pack is compiled into sitrep and loaded by `sitrep serve`\n"
    "unless the config says `rules: {default_pack: false}`; `rules: {disable:\n"
    "[NAME...]}` leaves single rules out. To change a rule, write the pack out,\n"
    "edit it and list it in `rule_files:`: a group of your files with the name\n"
    "of a built-in group replaces that group.\n";

/* One line per rule: file, group, kind, name, severity, for. */
static int list_builtin(void)
{
    struct rules_set *set = NULL;
    struct sbuf errors;
    sbuf_init(&errors, 1 << 20);
    int rc = rules_builtin_parse(&set, 1000, &errors);
    if (rc < 0) {
        fputs(errors.buf, stderr);
    } else {
        printf("%-28s %-28s %-6s %-28s %-8s %s\n", "FILE", "GROUP", "KIND", "NAME", "SEVERITY",
               "FOR");
        for (size_t g = 0; g < set->ngroups; g++)
            for (size_t i = 0; i < set->groups[g].nrules; i++) {
                const struct rules__rule *r = &set->groups[g].rules[i];
                const char *sev = "-";
                for (size_t k = 0; k < r->nlabels; k++)
                    if (strcmp(r->labels[k].name, "severity") == 0)
                        sev = r->labels[k].value;
                char fo[64] = "-";
                if (r->alerting)
                    rules__duration_format(r->for_ms, fo, sizeof(fo));
                printf("%-28s %-28s %-6s %-28s %-8s %s\n", set->groups[g].file, set->groups[g].name,
                       r->alerting ? "alert" : "record", r->name, sev, fo);
            }
    }
    rules_set_free(set);
    sbuf_release(&errors);
    return rc < 0 ? 1 : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Every file of the pack into dir (created if missing); existing files only with force. */
static int write_builtin(const char *dir, int force)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "sitrep rules builtin: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < rules_builtin_count(); i++) {
        char path[4096];
        size_t len;
        const char *text = rules_builtin_text(i, &len);
        snprintf(path, sizeof(path), "%s/%s", dir, rules_builtin_name(i));
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (force ? 0 : O_EXCL) | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, text, len) < 0 || close(fd) < 0) {
            fprintf(stderr, "sitrep rules builtin: %s: %s%s\n", path, strerror(errno),
                    errno == EEXIST ? " (--force overwrites)" : "");
            if (fd >= 0)
                close(fd);
            return 1;
        }
        printf("wrote %s\n", path);
    }
    printf("List them in rule_files (e.g. rule_files: ['%s/*.yml']): their groups replace\n"
           "the built-in groups of the same names.\n",
           dir);
    return 0;
}

static int cli_builtin(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int force = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            fputs(builtin_usage, stdout);
            return 0;
        default:
            fputs(builtin_usage, stderr);
            return 2;
        }
    }
    if (out && optind < argc) {
        fputs("sitrep rules builtin: --out writes every file; name none\n", stderr);
        return 2;
    }
    if (out)
        return write_builtin(out, force);
    if (optind == argc)
        return list_builtin();
    int bad = 0;
    for (int i = optind; i < argc; i++) {
        int k = rules_builtin_find(argv[i]);
        if (k < 0) {
            fprintf(stderr, "sitrep rules builtin: no built-in file %s (", argv[i]);
            for (size_t j = 0; j < rules_builtin_count(); j++)
                fprintf(stderr, "%s%s", j ? ", " : "", rules_builtin_name(j));
            fputs(")\n", stderr);
            bad = 1;
            continue;
        }
        size_t len;
        const char *text = rules_builtin_text((size_t)k, &len);
        fwrite(text, 1, len, stdout);
    }
    return bad;
}

int rules_cli(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "builtin") == 0)
        return cli_builtin(argc, argv);
    int help = argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0);
    fputs(builtin_usage, help ? stdout : stderr);
    return help ? 0 : 2;
}
