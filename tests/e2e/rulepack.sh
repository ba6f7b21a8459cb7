#!/usr/bin/env bash
# rulepack.sh: the default rule pack (rules/*.yml) through the real binary.
# 1. `sitrep check rules` passes every file of the pack.
# 2. The daemon runs with `rule_files: [the pack]` on this machine, with a
#    busy-but-healthy workload: a web access log with steady traffic (2xx,
#    ordinary 4xx, a rare 5xx, fast answers, many clients), an uptime probe
#    of sitrep's own /-/healthy, and CPU bursts of one core for 1 s in 4
#    (under 50% of the machine). For RULEPACK_SECONDS (30 by default; 600
#    gives issue 6's ten-minute noise run) /api/v1/alerts is polled every
#    second and must never list a firing alert; every rule must stay healthy
#    (no evaluation error) and every alerting rule must carry a severity of
#    page or ticket and summary and runbook annotations.
# Pending alerts are printed (not failures): they are what `for` is there for.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
secs=${RULEPACK_SECONDS:-30}
port=$(free_port)
url=http://127.0.0.1:$port
d=$E2E_TMP
pack="$SITREP_SRC/rules"

# 1. The pack passes the checker.
out=$("$B" check rules "$pack"/*.yml 2>&1)
rc=$?
echo "$out"
check "sitrep check rules rules/*.yml passes" test "$rc" = 0
check "the pack has files" test -n "$(ls "$pack"/*.yml 2>/dev/null)"

# 2. The daemon with the pack, on a healthy workload.
: >"$d/access.log"
cat >"$d/sitrep.yml" <<YML
rule_files: ["$pack/*.yml"]
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

firing_seen=0
pending_seen=""
for ((i = 0; i < secs; i++)); do
    sleep 1
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
            firing*) firing_seen=1; echo "at ${i}s: $line" ;;
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
finish
