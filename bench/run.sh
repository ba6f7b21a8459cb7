#!/usr/bin/env bash
# run.sh: every benchmark, each side by side with the peer a user would pick
# instead, measured in the same run on the same host. Writes bench/out/*.md.
# Usage: make bench   (or bench/run.sh after a release build in ./build)
set -eu
cd "$(dirname "$0")/.."
mkdir -p bench/out
python3 bench/collect_vs_node_exporter.py --sitrep build/sitrep --cycles-bin build/collect_bench \
    --runs "${BENCH_RUNS:-5}" | tee bench/out/collect.md
# Sample codec vs a plain Gorilla codec on the same series (synthetic shapes,
# plus a recorded host corpus when CHUNK_CORPUS names one made by
# build/record_corpus).
build/chunk_bench ${CHUNK_CORPUS:-} | tee bench/out/chunk.md
# The store against Prometheus 2.x (promtool and a real server on loopback)
# on a recorded corpus plus synthetic web-service series: bytes per sample,
# append throughput, head memory, decode speed and read latency. Needs a
# recording made by build/record_corpus (about an hour at 1 s): TSDB_CORPUS
# names it, else /work/corpus/host_1h2.bin or /work/corpus/host_1h.bin.
corpus=${TSDB_CORPUS:-}
if [ -z "$corpus" ]; then
    for c in /work/corpus/host_1h2.bin /work/corpus/host_1h.bin; do
        if [ -f "$c" ]; then corpus=$c; break; fi
    done
fi
if [ -z "$corpus" ] || [ ! -f "$corpus" ]; then
    echo "tsdb vs Prometheus: skipped (no corpus: set TSDB_CORPUS to a file made by" \
        "build/record_corpus OUT 3600)"
elif [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
    echo "tsdb vs Prometheus: skipped (apt-get install prometheus for /usr/bin/prometheus, promtool)"
else
    python3 bench/tsdb_vs_prometheus.py --corpus "$corpus" --build build \
        --runs "${BENCH_RUNS:-5}" | tee bench/out/tsdb.md
fi
# Access-log ingestion against GoAccess on the same generated 1,000,000-line
# combined log (goaccess is a bench-only dependency: scripts/deps.sh bench).
command -v goaccess >/dev/null || scripts/deps.sh bench || true
if command -v goaccess >/dev/null; then
    python3 bench/accesslog_vs_goaccess.py --build build --runs "${BENCH_RUNS:-5}" |
        tee bench/out/accesslog.md
else
    echo "access logs vs GoAccess: skipped (scripts/deps.sh bench installs goaccess)"
fi
