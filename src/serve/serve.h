/*
 * serve.h: `sitrep serve`, the daemon: wires configuration, the collector
 * and the HTTP server together, and owns the process lifecycle (signals,
 * reload, clean stop). Upper layer: may include every subsystem's header.
 */
#ifndef SITREP_SERVE_H
#define SITREP_SERVE_H

/* Run `sitrep serve` with its own argv (argv[0] == "serve"). Returns an exit code. */
int serve_main(int argc, char **argv);

/* Print the build's version line (used by `sitrep version`). */
void serve_print_version(void);

#endif
