#!/usr/bin/env bash
# rule_unittest.sh: differential test of `sitrep test rules` against Debian's
# `promtool test rules` (Prometheus 2.42) on the test files of
# tests/fixtures/ruletests: pass_*.yml must pass in both, fail_*.yml must
# fail in both with the same report (what was expected, what was got), and
# error_*.yml are refused by both (sitrep exits 2 and names file:line:col).
# The files always set `interval`: promtool 2.42 loads every sample at time 0
# when it is left out, where sitrep (and later promtool) take
# evaluation_interval.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
command -v promtool >/dev/null ||
    { echo "# SKIP: promtool not installed (scripts/deps.sh test installs it)"; exit 0; }
cd "$SITREP_SRC/tests/fixtures/ruletests" || exit 1

# The report without the "Unit Testing" header and blank lines: promtool
# writes them to stdout and the rest to stderr, so the two interleave
# differently, and it puts two spaces after the colon.
report() { grep -v -e '^Unit Testing:' -e '^$' "$1"; }

for f in pass_*.yml fail_*.yml error_*.yml; do
    promtool test rules "$f" >"$E2E_TMP/promtool.out" 2>&1
    prc=$?
    "$B" test rules "$f" >"$E2E_TMP/sitrep.out" 2>&1
    src=$?
    case $f in
    pass_*)
        check "$f: both pass (promtool $prc, sitrep $src)" test "$prc" = 0 -a "$src" = 0 ;;
    fail_*)
        check "$f: both fail (promtool $prc, sitrep $src)" test "$prc" = 1 -a "$src" = 1
        if diff <(report "$E2E_TMP/promtool.out") <(report "$E2E_TMP/sitrep.out") \
            >"$E2E_TMP/diff"; then
            ok "$f: the same report"
        else
            not_ok "$f: the same report (< promtool, > sitrep)"
            cat "$E2E_TMP/diff"
        fi ;;
    error_*)
        check "$f: both refuse it (promtool $prc, sitrep $src)" test "$prc" != 0 -a "$src" = 2
        check "$f: sitrep names file:line:col" grep -q "^$f:[0-9]*:[0-9]*: " "$E2E_TMP/sitrep.out" ;;
    esac
    [ "$prc" = 0 ] || [ "${f#pass_}" = "$f" ] || cat "$E2E_TMP/promtool.out"
    [ "$src" = 0 ] || [ "${f#pass_}" = "$f" ] || cat "$E2E_TMP/sitrep.out"
done

# Several files at once: the worst outcome is the exit status.
"$B" test rules pass_*.yml >/dev/null 2>&1
check "all passing files together exit 0" test $? = 0
"$B" test rules pass_alerts.yml fail_promql.yml >"$E2E_TMP/out" 2>&1
check "a failing file among passing ones exits 1" test $? = 1
check "each file has its header" test "$(grep -c '^Unit Testing: ' "$E2E_TMP/out")" = 2
"$B" test rules pass_alerts.yml fail_promql.yml error_series.yml >/dev/null 2>&1
check "an invalid file exits 2" test $? = 2
"$B" test rules >/dev/null 2>&1
check "no file is a usage error" test $? = 2

finish
