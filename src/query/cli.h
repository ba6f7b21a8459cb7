/*
 * cli.h: `sitrep query` (see cli.c): PromQL from the command line against a
 * running daemon.
 */
#ifndef SITREP_QUERY_CLI_H
#define SITREP_QUERY_CLI_H

/* argv: the arguments after "query". Returns the process exit status. */
int query_cli(int argc, char **argv);

#endif
