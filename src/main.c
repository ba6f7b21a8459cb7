/*
 * main.c: the `sitrep` command line: dispatches to subcommands.
 */
#include "config/config.h"
#include "ingest/import.h"
#include "notify/notify.h"
#include "query/cli.h"
#include "rules/rules.h"
#include "serve/serve.h"
#include "util/sbuf.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("Usage: sitrep COMMAND [options]\n"
          "\n"
          "sitrep watches a Linux server and its services, catches incidents early\n"
          "and says where to look.\n"
          "\n"
          "Commands:\n"
          "  serve                 run the daemon (collect, store, serve HTTP)\n"
          "  query 'EXPR'          evaluate PromQL on the running daemon (--help)\n"
          "  import FILE --data D  load OpenMetrics samples with timestamps into D (--help)\n"
          "  check config FILE...  validate config files; errors as file:line:col\n"
          "  check rules [--builtin] FILE...  validate Prometheus rule files (and the\n"
          "                        built-in pack); errors as file:line:col\n"
          "  test rules [--builtin] TESTFILE...  run rule unit tests (promtool's format)\n"
          "  rules builtin         list, print or write out the built-in rule pack (--help)\n"
          "  silence add|list|expire  manage silences on the running daemon (--help)\n"
          "  version               print the version\n"
          "  help                  show this help\n"
          "\n"
          "Examples:\n"
          "  sitrep serve                          # defaults: 127.0.0.1:9797, ./sitrep-data\n"
          "  sitrep serve --config sitrep.yml\n"
          "  sitrep check config sitrep.yml\n"
          "  sitrep query 'rate(node_cpu_seconds_total{mode=\"user\"}[1m])'\n"
          "  curl -s http://127.0.0.1:9797/metrics | grep node_load1\n"
          "\n"
          "Run 'sitrep COMMAND --help' for a command's options.\n",
          out);
}

static int check_config(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs("Usage: sitrep check config FILE...\n"
              "Validate config files; print file:line:col: message per problem.\n"
              "Exit status 0 if all are valid, 1 otherwise.\n",
              argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    int bad = 0;
    for (int i = 0; i < argc; i++) {
        struct config cfg;
        struct sbuf errors;
        config_defaults(&cfg);
        sbuf_init(&errors, 1 << 20);
        if (config_load(&cfg, argv[i], &errors) < 0) {
            fputs(errors.buf, stderr);
            bad = 1;
        } else {
            printf("%s: ok\n", argv[i]);
        }
        sbuf_release(&errors);
        config_release(&cfg);
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "query") == 0)
        return query_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "import") == 0)
        return ingest_import_main(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0) {
        if (argc >= 3 && strcmp(argv[2], "config") == 0)
            return check_config(argc - 3, argv + 3);
        if (argc >= 3 && strcmp(argv[2], "rules") == 0)
            return rules_cli_check(argc - 3, argv + 3);
        fputs("Usage: sitrep check config FILE...\n"
              "       sitrep check rules [--builtin] FILE...\n",
              stderr);
        return 2;
    }
    if (strcmp(cmd, "test") == 0) {
        if (argc >= 3 && strcmp(argv[2], "rules") == 0)
            return rules_cli_test(argc - 3, argv + 3);
        fputs("Usage: sitrep test rules [--builtin] TESTFILE...\n", stderr);
        return 2;
    }
    if (strcmp(cmd, "rules") == 0)
        return rules_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "silence") == 0) {
        if (argc < 3) {
            fputs("Usage: sitrep silence add|list|expire ... (--help)\n", stderr);
            return 2;
        }
        return notify_cli_silence(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        serve_print_version();
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sitrep: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
