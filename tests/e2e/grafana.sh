#!/usr/bin/env bash
# grafana.sh: the requests Grafana's Prometheus data source makes, replayed
# against sitrep serve in the order Grafana makes them, with its headers and
# parameter shapes, asserting the parts of each answer Grafana reads.
# (Grafana is not packaged in Debian, so the data source's side is replayed:
# saving the data source, opening the metric browser, a range panel.)
set -u
. "$(dirname "$0")/lib.bash"
port=$(free_port)
store_config "$E2E_TMP/sitrep.yml"
start_sitrep "$E2E_TMP/sitrep.yml" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
sleep 3 # a few ticks of the host's own metrics
python3 - "http://127.0.0.1:$port" <<'PY'
import json, sys, time, urllib.parse, urllib.request
base = sys.argv[1]
H = {"User-Agent": "Grafana/10.4.0", "Accept": "application/json, text/plain, */*",
     "X-Grafana-Org-Id": "1", "X-Dashboard-Uid": "sitrep", "X-Panel-Id": "2"}
fails = 0
def call(method, path, params):
    body = None
    url = base + path
    q = urllib.parse.urlencode(params, doseq=True)
    if method == "GET":
        url += "?" + q
    else:
        body = q.encode()
    req = urllib.request.Request(url, data=body, method=method, headers=dict(H))
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
        d = json.loads(r.read())
    assert d["status"] == "success", d
    return d["data"]
def check(what, fn):
    global fails
    try:
        fn()
        print("ok - " + what)
    except Exception as e:
        fails += 1
        print("not ok - %s: %r" % (what, e))
now = time.time()
# 1. Saving the data source: the health check is the instant query 1+1, POSTed.
def health():
    d = call("POST", "/api/v1/query", {"query": "1+1", "time": "%.3f" % now})
    assert d["resultType"] == "scalar" and float(d["result"][1]) == 2, d
check("health check: POST query 1+1 is the scalar 2", health)
def buildinfo():
    d = call("GET", "/api/v1/status/buildinfo", {})
    assert isinstance(d["version"], str) and d["version"], d
check("buildinfo: a version string (Grafana picks features by it)", buildinfo)
# 2. The metric browser: names and labels in the dashboard's time range, series of one metric.
rng = {"start": "%d" % (now - 3600), "end": "%d" % now}
def names():
    d = call("GET", "/api/v1/label/__name__/values", rng)
    assert "node_load1" in d and d == sorted(d), d[:5]
check("metric browser: metric names, sorted", names)
def labels():
    d = call("GET", "/api/v1/labels", rng)
    assert "__name__" in d and "cpu" in d, d
check("metric browser: label names", labels)
def labels_of_metric():
    d = call("GET", "/api/v1/labels", dict(rng, **{"match[]": "node_cpu_seconds_total"}))
    assert d == ["__name__", "cpu", "mode"], d
check("metric browser: labels of one metric (match[])", labels_of_metric)
def values_of_label():
    d = call("GET", "/api/v1/label/mode/values", dict(rng, **{"match[]": "node_cpu_seconds_total"}))
    assert "idle" in d and "user" in d, d
check("metric browser: values of a label for one metric", values_of_label)
def series():
    d = call("GET", "/api/v1/series", dict(rng, **{"match[]": '{__name__="node_cpu_seconds_total"}'}))
    assert d and all(s["__name__"] == "node_cpu_seconds_total" for s in d), d[:2]
check("metric browser: series of one metric", series)
def metadata():
    d = call("GET", "/api/v1/metadata", {})
    assert d["node_cpu_seconds_total"][0]["type"] == "counter", d.get("node_cpu_seconds_total")
check("metadata: type and help for the query editor's hints", metadata)
# 3. A range panel: rate by mode over the last minutes, step as Grafana computes it.
def panel():
    d = call("POST", "/api/v1/query_range", {
        "query": "sum by (mode) (rate(node_cpu_seconds_total[$__rate_interval]))".replace(
            "$__rate_interval", "1m"),
        "start": "%d" % (now - 300), "end": "%d" % now, "step": "15"})
    assert d["resultType"] == "matrix" and d["result"], d
    for s in d["result"]:
        assert set(s["metric"]) == {"mode"}, s["metric"]
        for t, v in s["values"]:
            assert isinstance(t, (int, float)) and isinstance(v, str), (t, v)
            float(v)
        ts = [t for t, _ in s["values"]]
        assert ts == sorted(ts) and all((b - a) % 15 == 0 for a, b in zip(ts, ts[1:])), ts
check("range panel: POST query_range gives a matrix on the step grid", panel)
def bad_query():
    req = urllib.request.Request(base + "/api/v1/query_range", method="POST",
                                 data=b"query=rate(x[5m]&start=1&end=2&step=1", headers=H)
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("accepted")
    except urllib.error.HTTPError as e:
        d = json.loads(e.read())
        assert e.code == 400 and d["errorType"] == "bad_data" and "parse error" in d["error"], d
check("a panel with a typo: 400 bad_data with the parse error Grafana shows", bad_query)
print("%d failed" % fails)
sys.exit(1 if fails else 0)
PY
