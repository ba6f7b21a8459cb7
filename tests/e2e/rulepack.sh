#!/usr/bin/env bash
# rulepack.sh: the default rule pack (rules/*.yml, compiled into the binary)
# through the real binary.
# 1. `sitrep check rules --builtin` passes the compiled-in pack and the
#    source files; `sitrep rules builtin` lists its rules, prints a file
#    byte for byte and writes them out.
# 2. `sitrep serve` with no config at all loads the pack: /api/v1/rules
#    lists every built-in rule under builtin:FILE names.
# 3. The daemon, with a config that names no rule file, runs on this machine
#    with a busy-but-healthy workload: a web access log with steady traffic
#    (2xx, ordinary 4xx, a rare 5xx, fast answers, many clients), an uptime
#    probe of sitrep's own /-/healthy, and CPU bursts of one core for 1 s in
#    4 (under 50% of the machine). For RULEPACK_SECONDS (30 by default; 600
#    gives issue 6's ten-minute noise run) /api/v1/alerts is polled every
#    second and must never list a firing alert; every rule must stay healthy
#    (no evaluation error) and every alerting rule must carry a severity of
#    page or ticket and summary and runbook annotations.
# 4. Reloads: `rules: {disable: [...]}` leaves one rule out and keeps the
#    rest; a user file with a built-in group's name replaces that group;
#    `default_pack: false` unloads the pack.
# Pending alerts are printed (not failures): they are what `for` is there for.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
secs=${RULEPACK_SECONDS:-30}
port=$(free_port)
url=http://127.0.0.1:$port
d=$E2E_TMP
pack="$SITREP_SRC/rules"
pyck() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

# 1. The pack passes the checker, and the CLI shows what is compiled in.
out=$("$B" check rules --builtin "$pack"/*.yml 2>&1)
rc=$?
echo "$out"
check "sitrep check rules --builtin rules/*.yml passes" test "$rc" = 0
check "the compiled-in files are checked as builtin:FILE" grep -q "^builtin:host.yml: SUCCESS" <<<"$out"
nrules=$(cat "$pack"/*.yml | grep -cE '^ *- (alert|record):')
check "sitrep rules builtin lists every rule of rules/" \
    test "$("$B" rules builtin | tail -n +2 | wc -l)" = "$nrules"
check "sitrep rules builtin host.yml prints the file as it is in rules/" \
    cmp -s <("$B" rules builtin host.yml) "$pack/host.yml"
"$B" rules builtin --out "$d/copy" >/dev/null
# Only the pack's files: rules/tests/ holds its behaviour tests, not rules.
check "sitrep rules builtin --out writes every file" \
    diff <(cd "$d/copy" && ls && cat *.yml) <(cd "$pack" && ls *.yml && cat *.yml)
check "sitrep rules builtin --out does not overwrite" \
    bash -c "! '$B' rules builtin --out '$d/copy' 2>/dev/null"

# builtin_rules: "FILE NAME" per rule of /api/v1/rules, sorted.
builtin_rules() {
    curl -fsS "$url/api/v1/rules" | pyck "
for g in d['data']['groups']:
    for r in g['rules']: print(g['file'], r['name'])" | sort
}

# 2. No config at all: the pack is on.
"$B" serve --listen "127.0.0.1:$port" --data "$d/bare" 2>>"$d/log" &
bare=$!
E2E_PIDS+=($bare)
wait_http "$url/-/healthy" 30 || { cat "$d/log"; exit 1; }
builtin_rules >"$d/bare.rules"
check "with no config, /api/v1/rules has every built-in rule" \
    test "$(grep -c '^builtin:' "$d/bare.rules")" = "$nrules"
check "... under the names builtin:host.yml, builtin:filesystem.yml, builtin:services.yml" \
    bash -c "grep -q '^builtin:host.yml CPUSaturated$' '$d/bare.rules' && grep -q '^builtin:filesystem.yml FilesystemFullIn24h$' '$d/bare.rules' && grep -q '^builtin:services.yml EndpointDown$' '$d/bare.rules'"
kill -TERM "$bare"
wait "$bare"

# 3. The daemon, no rule_files, on a healthy workload.
: >"$d/access.log"
cat >"$d/sitrep.yml" <<YML
collect: {top_processes: 3}
logs:
  - {service: web, path: "$d/access.log", format: combined, request_time: seconds}
probes:
  - {name: self, url: "$url/-/healthy", interval: 5s, timeout: 2s}
YML
"$B" check config "$d/sitrep.yml" || not_ok "config of the noise run is valid"

# Steady traffic: 30 requests/s from 50 clients, 3% 404, 0.3% 500,
# request times 1 ms .. 300 ms.
cat >"$d/traffic.py" <<'PY'
import random, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
f = open(path, "a")
end = time.time() + secs
while time.time() < end:
    now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    for _ in range(30):
        r = random.random()
        st = 500 if r < 0.003 else 404 if r < 0.033 else 200
        f.write('10.1.0.%d - - [%s] "GET /items/%d HTTP/1.1" %d 512 "-" "curl/8" %.3f\n'
                % (random.randint(1, 50), now, random.randint(1, 500), st,
                   random.uniform(0.001, 0.3)))
    f.flush()
    time.sleep(1)
PY
# CPU bursts: one core busy 1 s out of every 4.
cat >"$d/burst.py" <<'PY'
import sys, time
end = time.time() + float(sys.argv[1])
while time.time() < end:
    t = time.time() + 1
    while time.time() < t:
        pass
    time.sleep(3)
PY

start_sitrep "$d/sitrep.yml" "$port" "$d/data" || { not_ok "daemon starts"; finish; exit 1; }
python3 "$d/traffic.py" "$d/access.log" "$((secs + 10))" &
E2E_PIDS+=($!)
python3 "$d/burst.py" "$((secs + 10))" &
E2E_PIDS+=($!)

# The hypervisor's steal, sampled each second: on a shared VM it can starve
# the whole machine for a while, and then CPUSaturated and the latency
# alerts tell the truth about the host, not a false alarm of the pack. As in
# the baseline drill (tests/drills/README.md), an alert that fires within 60 s
# after at least a quarter of the CPU was stolen over some 15 s is excused
# and printed; any other firing fails the run.
steal_j=() total_j=()
cpu_sample() {
    local _ u n s i w q sq st rest
    read -r _ u n s i w q sq st rest </proc/stat
    steal_j+=("$st")
    total_j+=("$((u + n + s + i + w + q + sq + st))")
}
# Largest steal share over any 15 s span within the last 60 samples.
worst_steal() {
    local k=${#steal_j[@]} best=0 a b share
    for ((b = k - 1; b >= 15 && b >= k - 60; b--)); do
        a=$((b - 15))
        share=$(((steal_j[b] - steal_j[a]) * 100 / (total_j[b] - total_j[a] + 1)))
        ((share > best)) && best=$share
    done
    echo "$best"
}
firing_seen=0
pending_seen=""
cpu_sample
for ((i = 0; i < secs; i++)); do
    sleep 1
    cpu_sample
    a=$(curl -fsS "$url/api/v1/alerts") || { not_ok "GET /api/v1/alerts"; break; }
    f=$(printf '%s' "$a" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for a in d["data"]["alerts"]:
    print(a["state"], a["labels"].get("alertname"), a["value"],
          json.dumps(a["labels"], sort_keys=True), a["annotations"].get("summary", ""))')
    if [ -n "$f" ]; then
        while IFS= read -r line; do
            case $line in
            firing*)
                st=$(worst_steal)
                if ((st >= 25)); then
                    echo "at ${i}s: excused (hypervisor steal ${st}% over 15 s): $line"
                else
                    firing_seen=1
                    echo "at ${i}s: $line"
                fi ;;
            pending*) case $pending_seen in *"${line#pending }"*) ;; *)
                pending_seen="$pending_seen|${line#pending }"; echo "at ${i}s: $line" ;; esac ;;
            esac
        done <<<"$f"
    fi
done
check "no alert fired during ${secs}s of healthy activity" test "$firing_seen" = 0

# Every rule healthy, every alerting rule labelled and annotated.
curl -fsS "$url/api/v1/rules" >"$d/rules.json"
python3 - "$d/rules.json" <<'PY' >"$d/rules.check" 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
bad, n = [], 0
for g in d["data"]["groups"]:
    for r in g["rules"]:
        n += 1
        if r["health"] != "ok":
            bad.append("%s: health %s %s" % (r["name"], r["health"], r.get("lastError", "")))
        if r["type"] == "alerting":
            if r["labels"].get("severity") not in ("page", "ticket"):
                bad.append("%s: severity %r" % (r["name"], r["labels"].get("severity")))
            for k in ("summary", "runbook"):
                if not r["annotations"].get(k):
                    bad.append("%s: no %s annotation" % (r["name"], k))
print("%d rules" % n)
for b in bad:
    print(b)
sys.exit(1 if bad or n == 0 else 0)
PY
rc=$?
cat "$d/rules.check"
check "every rule healthy, with severity, summary and runbook" test "$rc" = 0

# 4. Turning parts of the pack off, and replacing a group, by reload.
builtin_rules >"$d/all.rules"
cp "$d/sitrep.yml" "$d/base.yml"
{ cat "$d/base.yml"; echo "rules: {disable: [CPUSaturated]}"; } >"$d/sitrep.yml"
curl -fsS -o /dev/null -X POST "$url/-/reload"
builtin_rules >"$d/less.rules"
check "rules.disable: [CPUSaturated] leaves exactly that rule out" \
    bash -c "diff '$d/all.rules' '$d/less.rules' | grep -qx '< builtin:host.yml CPUSaturated' && [ \$(diff '$d/all.rules' '$d/less.rules' | grep -c '^[<>]') = 1 ]"
cat >"$d/mycpu.yml" <<'YML'
groups:
  - name: sitrep-host-cpu
    rules:
      - alert: CPUSaturated
        expr: vector(1) > 2
        labels: {severity: ticket}
        annotations: {summary: mine, runbook: mine}
YML
{ cat "$d/base.yml"; echo "rule_files: [mycpu.yml]"; } >"$d/sitrep.yml"
curl -fsS -o /dev/null -X POST "$url/-/reload"
builtin_rules >"$d/mine.rules"
check "a user group named sitrep-host-cpu replaces the built-in one" \
    bash -c "grep -qx '$d/mycpu.yml CPUSaturated' '$d/mine.rules' && ! grep -q '^builtin:host.yml CPUSaturated' '$d/mine.rules' && [ \$(wc -l <'$d/mine.rules') = \$(wc -l <'$d/all.rules') ]"
{ cat "$d/base.yml"; echo "rules: {default_pack: false}"; } >"$d/sitrep.yml"
curl -fsS -o /dev/null -X POST "$url/-/reload"
check "rules.default_pack: false unloads the pack" test -z "$(builtin_rules)"
finish
