/*
 * import.h: `sitrep import`: load exposition files with timestamps
 * (OpenMetrics, as `promtool tsdb create-blocks-from openmetrics` reads, or
 * the Prometheus text format) into a data directory's store, for backfill,
 * migration and side-by-side tests with Prometheus on the same data.
 */
#ifndef SITREP_INGEST_IMPORT_H
#define SITREP_INGEST_IMPORT_H

/* argv: the arguments after "import". Returns the process exit status. */
int ingest_import_main(int argc, char **argv);

#endif
