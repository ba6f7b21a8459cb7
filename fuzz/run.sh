#!/usr/bin/env bash
# run.sh: build the fuzz targets with clang's libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, then run each for a bounded time over its seed
# corpus in fuzz/corpus/<name>/ (new inputs go to the build folder, not to
# the seeds). A crash leaves its input as build-fuzz/<target>-crash-*.
# Usage: fuzz/run.sh [seconds per target, default 30; 0 = replay the seeds
#        once] [target...]      (targets: the fuzz/*_fuzz.c names)
set -eu
cd "$(dirname "$0")/.."
secs=${1:-30}
[ $# -gt 0 ] && shift
out=${FUZZ_BUILD:-build-fuzz}
cc=${FUZZ_CC:-clang}
mkdir -p "$out"

# What each target links beyond its own file (one line per target).
declare -A deps=(
    [accesslog_fuzz]="src/ingest/logparse.c src/ingest/route.c src/ingest/sketch.c src/ingest/agg.c src/metric/metric_buf.c src/util/util.c src/util/sbuf.c -lpcre2-8"
    [block_fuzz]="src/tsdb/block.c src/tsdb/chunk.c src/tsdb/crc32c.c src/util/util.c src/util/log.c src/util/fsutil.c"
    [expfmt_fuzz]="src/ingest/expfmt.c src/metric/metric_buf.c src/util/util.c src/util/sbuf.c"
    [statsd_fuzz]="src/statsd/parse.c src/statsd/statsd.c src/statsd/config.c src/util/yamlcfg.c src/metric/metric_buf.c src/metric/expose.c src/util/util.c src/util/sbuf.c src/util/log.c -lyaml"
    [chunk_fuzz]="src/tsdb/chunk.c src/tsdb/crc32c.c src/util/util.c"
    [index_fuzz]="src/tsdb/strtab.c src/tsdb/index.c src/tsdb/matcher.c src/util/util.c -lpcre2-8"
    [resp_fuzz]="src/queue/resp.c src/util/util.c src/util/sbuf.c"
    [promql_fuzz]="src/query/lex.c src/query/parse.c src/query/print.c src/query/functions.c src/util/util.c src/util/sbuf.c -lpcre2-8"
    [notify_fuzz]="src/notify/matcher.c src/notify/common.c src/notify/jsonread.c src/notify/config.c src/notify/route.c src/util/util.c src/util/sbuf.c src/util/log.c src/util/json.c src/util/dtoa.c -lpcre2-8 -lyaml"
    [qdisc_fuzz]="src/collect/qdisc.c src/collect/collect_util.c src/metric/metric_buf.c src/util/util.c"
    [series_notation_fuzz]="src/rules/series_notation.c src/util/util.c"
    [rules_file_fuzz]="src/rules/load.c src/rules/template.c src/query/lex.c src/query/parse.c src/query/print.c src/query/functions.c src/metric/metric_buf.c src/util/util.c src/util/sbuf.c -lpcre2-8 -lyaml"
    [template_fuzz]="src/rules/template.c src/util/util.c src/util/sbuf.c"
    [wal_fuzz]="src/tsdb/wal.c src/tsdb/crc32c.c src/util/util.c src/util/log.c"
)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(printf '%s\n' "${!deps[@]}" | sort))
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Isrc
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Wall -Wextra -Werror -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes"
for t in "${targets[@]}"; do
    [ -n "${deps[$t]+x}" ] || { echo "run.sh: unknown target $t" >&2; exit 2; }
    seeds=fuzz/corpus/${t%_fuzz}
    work=$out/corpus-$t
    mkdir -p "$work"
    # shellcheck disable=SC2086
    $cc $flags "fuzz/$t.c" ${deps[$t]} -lpthread -lm -o "$out/$t"
    if [ "$secs" = 0 ]; then
        "$out/$t" -runs=0 "$seeds"
    else
        "$out/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
            -print_final_stats=1 -artifact_prefix="$out/$t-" "$work" "$seeds"
    fi
    echo "run.sh: $t ok"
done
