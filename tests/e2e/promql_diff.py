#!/usr/bin/env python3
"""promql_diff.py: the same PromQL queries against sitrep and a real Prometheus
holding the same samples; prints each difference and exits 1 if any.

    promql_diff.py gen FILE T0          write the OpenMetrics corpus (2 h at 15 s from T0)
    promql_diff.py compare SITREP_URL PROM_URL T0

Values must agree within 1e-9 relative; label sets must be identical; series
order is compared only where PromQL defines it (sort, sort_desc). Evaluation
times sit 7 s off the 15 s sample grid, so that the versions' different
handling of a sample exactly at a range's left edge (Debian's Prometheus is
2.x, sitrep follows 3.x) never comes into play.
"""
import json
import math
import random
import sys
import urllib.parse
import urllib.request

STEP = 15
POINTS = 480  # 2 h


def gen(path, t0):
    rnd = random.Random(42)
    out = []
    ts = [t0 + i * STEP for i in range(POINTS)]
    out.append("# HELP http_requests_total Requests served.")
    out.append("# TYPE http_requests_total counter")
    for inst in range(5):
        for method in ("GET", "POST"):
            for code in ("200", "500"):
                v = rnd.randint(0, 1000)
                for i, t in enumerate(ts):
                    if inst == 2 and method == "GET" and code == "200" and i == 200:
                        v = 0  # a counter reset
                    # Never two series with the same rate: topk/bottomk ties are
                    # broken differently by each engine (PromQL leaves it open).
                    v += (rnd.randint(0, 30) if code == "200" else rnd.randint(0, 3)) + \
                        0.001 * (inst * 4 + (method == "POST") * 2 + (code == "500")) + 0.0001
                    out.append('http_requests_total{instance="i%d",job="api",method="%s",code="%s"} %.4f %d'
                               % (inst, method, code, v, t))
    out.append("# HELP node_memory_bytes Memory in use.")
    out.append("# TYPE node_memory_bytes gauge")
    for inst in range(5):
        v = 1e9 + inst * 1e8
        for t in ts:
            v += rnd.gauss(0, 2e6)
            out.append('node_memory_bytes{instance="i%d",job="api"} %.1f %d' % (inst, v, t))
    out.append("# HELP temperature Room temperature.")
    out.append("# TYPE temperature gauge")
    for room in ("a", "b", "c"):
        v = 20.0
        for i, t in enumerate(ts):
            if room == "c" and 100 <= i < 140:
                continue  # a gap longer than the lookback
            v += rnd.uniform(-0.3, 0.3)
            out.append('temperature{room="%s"} %.3f %d' % (room, v, t))
    out.append("# HELP request_duration_seconds Request latency.")
    out.append("# TYPE request_duration_seconds histogram")
    les = ["0.1", "0.5", "1", "5", "+Inf"]
    for inst in range(3):
        counts = [0] * len(les)
        total = 0.0
        rows = {le: [] for le in les}
        sums, cnts = [], []
        for t in ts:
            n = rnd.randint(5, 50)
            for _ in range(n):
                d = rnd.expovariate(2.0 + inst)
                total += d
                for k, le in enumerate(les):
                    if le == "+Inf" or d <= float(le):
                        counts[k] += 1
            for k, le in enumerate(les):
                rows[le].append((counts[k], t))
            sums.append((total, t))
            cnts.append((counts[-1], t))
        for le in les:
            for c, t in rows[le]:
                out.append('request_duration_seconds_bucket{instance="i%d",job="api",le="%s"} %d %d'
                           % (inst, le, c, t))
        for s, t in sums:
            out.append('request_duration_seconds_sum{instance="i%d",job="api"} %.6f %d' % (inst, s, t))
        for c, t in cnts:
            out.append('request_duration_seconds_count{instance="i%d",job="api"} %d %d' % (inst, c, t))
    out.append("# EOF")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def queries():
    c = "http_requests_total"
    ce = 'http_requests_total{code="500"}'
    g = "node_memory_bytes"
    tmp = "temperature"
    q = []
    for s in (c, ce):
        q += ["rate(%s[1m])" % s, "irate(%s[2m])" % s, "increase(%s[5m])" % s,
              "resets(%s[30m])" % s, "changes(%s[10m])" % s]
    for s in (g, tmp):
        q += ["delta(%s[5m])" % s, "idelta(%s[2m])" % s, "deriv(%s[10m])" % s,
              "predict_linear(%s[30m], 600)" % s]
        for f in ("avg", "min", "max", "sum", "count", "stddev", "stdvar", "last", "present"):
            q.append("%s_over_time(%s[10m])" % (f, s))
        q.append("quantile_over_time(0.9, %s[10m])" % s)
    r = "rate(%s[5m])" % c
    for agg in ("sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"):
        q += ["%s(%s)" % (agg, r), "%s by (instance) (%s)" % (agg, r), "%s without (code) (%s)" % (agg, r)]
    q += ["topk(3, %s)" % r, "bottomk(2, %s)" % r, "quantile(0.5, %s)" % r,
          "quantile by (method) (0.9, %s)" % r, "topk by (instance) (1, %s)" % r,
          'count_values("mb", floor(%s / 1e8))' % g,
          "sum by (instance, method) (%s) / on(instance) group_left sum by (instance) (%s)" % (r, r),
          '%s / ignoring(code) %s' % ('rate(http_requests_total{code="500"}[5m])',
                                      'rate(http_requests_total{code="200"}[5m])'),
          "%s > 100" % c, "%s > bool 100" % c, "%s == bool %s" % (c, c),
          "2 * %s" % g, "%s %% 7" % g, "-%s" % g, "%s ^ 0.5" % g, "%s / 1e9 + 1" % g,
          "%s and %s" % (ce, c), "%s or %s" % (g, tmp), "%s unless %s" % (c, ce),
          '%s{method="GET"} unless on(instance) %s{code="200", instance="i1"}' % (c, c),
          "1 + 2 * 3 ^ 2", "(1 + 2) * 3", "2 ^ 3 ^ 2", "10 % 3", "-2 ^ 2",
          "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
          "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[10m])))",
          "histogram_quantile(0.99, sum by (le, instance) (rate(request_duration_seconds_bucket[5m])))",
          "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
          ]
    for f in ("abs", "ceil", "floor", "sqrt", "ln", "log2", "log10", "sgn", "exp"):
        arg = "%s / 1e9" % g if f == "exp" else tmp
        q.append("%s(%s)" % (f, arg))
    q += ["round(%s, 0.5)" % tmp, "clamp(%s, 19.5, 20.5)" % tmp, "clamp_min(%s, 20)" % tmp,
          "clamp_max(%s, 20)" % tmp, "sin(%s)" % tmp, "cos(%s)" % tmp, "atan2(%s, 3)" % tmp,
          "time()", "timestamp(%s)" % tmp, "hour(timestamp(%s))" % tmp,
          "minute()", "day_of_week()", "days_in_month()", "year()",
          'label_replace(%s, "node", "$1", "instance", "i(.*)")' % g,
          'label_join(%s, "both", "-", "instance", "job")' % g,
          "absent(nonexistent_metric)", "absent(%s)" % g, "absent_over_time(nonexistent[5m])",
          "vector(1)", "scalar(sum(%s))" % g, "sort(%s)" % g, "sort_desc(rate(%s[5m]))" % c,
          "max_over_time(rate(%s[1m])[10m:1m])" % c, "avg_over_time(%s[10m:30s])" % tmp,
          "rate(%s[5m] offset 10m)" % c, "%s offset 1h" % g,
          "sum(%s) + on() group_left vector(0)" % g,
          "count(%s) by (room)" % tmp, "max(%s) - min(%s)" % (tmp, tmp),
          "sum(rate(%s[5m])) > 1" % c, "%s > on(instance) group_left %s" % (g, g),
          "avg by (job) (%s)" % g, "stddev_over_time(rate(%s[1m])[15m:1m])" % c,
          "increase(request_duration_seconds_count[10m])", "%s[5m]" % tmp, "%s[1m]" % ce,
          ]
    return q


def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def close(a, b):
    if a == b:
        return True
    fa, fb = float(a), float(b)
    if math.isnan(fa) and math.isnan(fb):
        return True
    if math.isinf(fa) or math.isinf(fb):
        return fa == fb
    return abs(fa - fb) <= 1e-9 * max(1.0, abs(fa), abs(fb))


def same(q, a, b):
    """'' if the answers agree, else what differs."""
    if a.get("status") != b.get("status"):
        return "status %s vs %s (%s / %s)" % (a.get("status"), b.get("status"), a.get("error"), b.get("error"))
    if a["status"] != "success":
        return ""
    da, db = a["data"], b["data"]
    if da["resultType"] != db["resultType"]:
        return "type %s vs %s" % (da["resultType"], db["resultType"])
    ra, rb = da["result"], db["result"]
    if da["resultType"] in ("scalar", "string"):
        return "" if ra[0] == rb[0] and close(ra[1], rb[1]) else "%s vs %s" % (ra, rb)
    key = lambda s: json.dumps(s["metric"], sort_keys=True)
    if "sort" in q:  # order defined
        if [key(s) for s in ra] != [key(s) for s in rb]:
            return "order differs"
    ma, mb = {key(s): s for s in ra}, {key(s): s for s in rb}
    if set(ma) != set(mb):
        return "series differ: only sitrep %s, only prometheus %s" % (
            sorted(set(ma) - set(mb))[:3], sorted(set(mb) - set(ma))[:3])
    for k in ma:
        pa = ma[k].get("values") or [ma[k]["value"]]
        pb = mb[k].get("values") or [mb[k]["value"]]
        if len(pa) != len(pb):
            return "%s: %d points vs %d" % (k, len(pa), len(pb))
        for x, y in zip(pa, pb):
            if x[0] != y[0] or not close(x[1], y[1]):
                return "%s: %s vs %s" % (k, x, y)
    return ""


def compare(sitrep, prom, t0):
    t0 = int(t0)
    times = [t0 + 3607, t0 + 5407, t0 + 7190]
    bad = 0
    n = 0
    qs = queries()
    for q in qs:
        for t in times:
            n += 1
            d = same(q, get(sitrep, "/api/v1/query", {"query": q, "time": t}),
                     get(prom, "/api/v1/query", {"query": q, "time": t}))
            if d:
                bad += 1
                print("DIFF instant %s @%d: %s" % (q, t, d))
        if q.endswith("]"):
            continue  # a range vector: instant queries only
        n += 1
        p = {"query": q, "start": t0 + 1807, "end": t0 + 7087, "step": 60}
        d = same(q, get(sitrep, "/api/v1/query_range", p), get(prom, "/api/v1/query_range", p))
        if d:
            bad += 1
            print("DIFF range %s: %s" % (q, d))
    print("# %d queries (%d expressions), %d differ" % (n, len(qs), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3], sys.argv[4]))
