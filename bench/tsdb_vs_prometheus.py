#!/usr/bin/env python3
"""tsdb_vs_prometheus.py: the store (src/tsdb/) against Prometheus 2.x on one
corpus, every figure measured side by side in the same run (issue 3,
"Benchmarks"). The corpus is a recording of this host made by
build/record_corpus plus synthetic web-service series that
build/tsdb_corpus generates for the same timestamps (see the top of
bench/tsdb_corpus.c). Sections:

  disk    bytes per sample of the raw tier: the corpus loaded into a store
          (2 h blocks, flushed) vs `promtool tsdb create-blocks-from
          openmetrics` (2 h blocks), apparent file sizes of the block dirs
  append  samples per CPU-second of the whole process: build/tsdb_bench vs
          `promtool tsdb bench write` on the same label file
  head    memory per series after K samples each: the store's head in a C
          program (allocator bytes in use) vs a real Prometheus server
          scraping the same series every second (Go heap in use after a
          forced GC), each minus its value before any series
  read    decode speed and the latency of reading 1 h of 1,000 series, in
          process (tsdb_query vs PromQL engine time) and over HTTP (sitrep
          /api/v1/export vs Prometheus /api/v1/query with a range selector)

Prints a markdown table of medians and ratios, then per-run figures and how
each was taken. Every server started here listens on loopback only and is
stopped before the script ends.

Usage: bench/tsdb_vs_prometheus.py --corpus /path/host.bin [--build build]
           [--runs 5] [--head-runs 3] [--head-samples 180] [--sections ...]
"""
import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

SELECTOR = 'http_requests_total{status=~"200|500"}'  # 1,000 synthetic series
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def kv(text):
    """key=value pairs of the last line that has any."""
    for line in reversed(text.strip().splitlines()):
        pairs = dict(re.findall(r"(\w+)=(\S+)", line))
        if pairs:
            return {k: float(v) if re.fullmatch(r"-?[0-9.e+]+", v) else v for k, v in pairs.items()}
    return {}


def run(cmd, cwd=None):
    """Run cmd; return (stdout, CPU seconds of the process and its waited-for children, wall s)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(), err.read().decode()
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, text, etext[-3000:]))
    Bench.last_stderr = etext[-2000:]
    return text, ru.ru_utime + ru.ru_stime, wall


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=120):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return body, time.monotonic() - t0


def tree_bytes(path, skip=()):
    """Apparent size (st_size) of the regular files under path, skipping dirs named in skip."""
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip]
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_size
    return total


def med(xs):
    return statistics.median(xs) if xs else float("nan")


class Server:
    """A child process (prometheus or sitrep serve) stopped on exit, whatever happens."""

    live = []

    def __init__(self, cmd, ready_url, log_path):
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        Server.live.append(self)
        deadline = time.monotonic() + 60
        while True:
            try:
                http_get(ready_url, timeout=2)
                return
            except OSError:
                if self.p.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("%s did not start; see %s" % (cmd[0], log_path))
                time.sleep(0.2)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        if self in Server.live:
            Server.live.remove(self)


def prom_metrics(base):
    body, _ = http_get(base + "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def prom_memory(base):
    """Prometheus' own memory figures, right after a forced GC (pprof's gc=1)."""
    http_get(base + "/debug/pprof/heap?gc=1")
    m = prom_metrics(base)
    return {
        "heap_inuse": m["go_memstats_heap_inuse_bytes"],
        "heap_alloc": m["go_memstats_heap_alloc_bytes"],
        "rss": m["process_resident_memory_bytes"],
        "series": m["prometheus_tsdb_head_series"],
        "chunks": m.get("prometheus_tsdb_head_chunks", 0),
        "appended": sum(v for k, v in m.items() if k.startswith("prometheus_tsdb_head_samples_appended_total")),
    }


class Exposition(http.server.ThreadingHTTPServer):
    """Serves an empty /metrics until armed, then tick files 0..K-1, one per scrape, then the last again."""

    daemon_threads = True

    def __init__(self, port, files):
        self.files, self.armed, self.served = files, False, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), ExpositionHandler)


class ExpositionHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        with srv.lock:
            if srv.armed:
                i = min(srv.served, len(srv.files) - 1)
                srv.served += 1
                with open(srv.files[i], "rb") as f:
                    body = f.read()
            else:
                body = b""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Bench:
    last_stderr = ""  # of the last run(): what a tool logged

    def __init__(self, a):
        self.a = a
        self.tool = os.path.join(a.build, "tsdb_corpus")
        self.tmp = tempfile.mkdtemp(prefix="tsdb-vs-prom-", dir=a.tmp)
        self.rows = []  # (measure, sitrep, prometheus, ratio)
        self.notes = []  # per-run figures
        self.info = kv(run([self.tool, "info", a.corpus])[0])
        log("corpus: %s" % self.info)

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def row(self, measure, ours, theirs, ratio):
        self.rows.append((measure, ours, theirs, ratio))

    # ---- disk -------------------------------------------------------------
    def disk(self):
        for part in self.a.parts.split(","):
            store = self.path("sitrep-%s" % part, "tsdb")
            os.makedirs(os.path.dirname(store))
            out, cpu, _ = run([self.tool, "-p", part, "load", self.a.corpus, store])
            s = kv(out)
            sraw = os.path.join(store, "raw")
            layout = "sitrep raw/ after its own maintenance: %s%s" % (
                ", ".join(sorted(os.listdir(sraw))),
                "" if s["flush_ok"] else " (tsdb_maintain(FLUSH) FAILED: %s)" % "; ".join(
                    re.sub(r"^\S+ error\s+|/\S*/", "", x) for x in self.last_stderr.splitlines() if " error " in x))
            om = self.path("%s.om" % part)
            run([self.tool, "-p", part, "openmetrics", self.a.corpus, om])
            pdir = self.path("prom-%s" % part)
            os.makedirs(pdir)
            pout, pcpu, _ = run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", om, pdir])
            os.unlink(om)
            blocks = [d for d in os.listdir(pdir) if os.path.exists(os.path.join(pdir, d, "meta.json"))]
            pbytes = sum(tree_bytes(os.path.join(pdir, d)) for d in blocks)
            psamples = sum(json.load(open(os.path.join(pdir, d, "meta.json")))["stats"]["numSamples"] for d in blocks)
            ours, theirs = s["raw_bytes"] / s["samples"], pbytes / psamples
            # Split: sample data (sitrep raw/*/chunks, Prometheus */chunks/*) vs the rest (index, meta).
            schunks = sum(os.path.getsize(os.path.join(sraw, d, "chunks")) for d in os.listdir(sraw)
                          if os.path.exists(os.path.join(sraw, d, "chunks")))
            pchunks = sum(tree_bytes(os.path.join(pdir, d, "chunks")) for d in blocks)
            what = {"all": "host recording + synthetic", "host": "host recording only", "syn": "synthetic only"}[part]
            self.row("bytes per sample on disk, raw tier (%s; %d series, %.1f M samples)"
                     % (what, s["series"], s["samples"] / 1e6),
                     "%.3f" % ours, "%.3f" % theirs, "%.2f" % (ours / theirs))
            self.notes.append(
                "disk/%s: sitrep raw/ %d bytes in %d files for %d samples (chunks %.3f B/sample, index and "
                "the rest %.0f B/series; 1 min + 1 h tiers: %d bytes more), load %.1f CPU-s; Prometheus %d "
                "block(s) %d bytes for %d samples (chunks %.3f B/sample, index and the rest %.0f B/series), "
                "promtool %.1f CPU-s; samples equal: %s; %s; Prometheus blocks: %s"
                % (part, s["raw_bytes"], s["raw_files"], s["samples"], schunks / s["samples"],
                   (s["raw_bytes"] - schunks) / s["series"], s["tier_bytes"], cpu,
                   len(blocks), pbytes, psamples, pchunks / psamples, (pbytes - pchunks) / s["series"], pcpu,
                                       "yes" if psamples == s["samples"]
                                       else "NO (%d vs %d)" % (s["samples"], psamples), layout,
                                       ", ".join("%d-%d" % (m["minTime"], m["maxTime"]) for m in
                                                 (json.load(open(os.path.join(pdir, d, "meta.json")))
                                                  for d in sorted(blocks)))))
            if part != "all":
                shutil.rmtree(os.path.dirname(store))
                shutil.rmtree(pdir)

    # ---- append -----------------------------------------------------------
    def append(self):
        labels = self.path("labels.jsonl")
        n = int(kv(run([self.tool, "labels", self.a.corpus, labels])[0])["series"])
        scrapes = self.a.scrapes
        ours, theirs, own_loop = [], [], []
        for r in range(self.a.runs):
            for side in (("sitrep", "prom") if r % 2 == 0 else ("prom", "sitrep")):
                if side == "sitrep":
                    # The store's directory is deleted here, outside the
                    # measured process, as promtool's --out is below.
                    store = self.path("sitrep-bench")
                    out, cpu, _ = run([os.path.join(self.a.build, "tsdb_bench"), labels, str(n), str(scrapes),
                                       store])
                    shutil.rmtree(store)
                    s = kv(out)
                    ours.append(s["samples"] / cpu)
                    own_loop.append(s["samples_per_cpu_s"])
                else:
                    wd = self.path("promtool-bench")
                    os.makedirs(wd, exist_ok=True)
                    out, cpu, _ = run([PROMTOOL, "tsdb", "bench", "write", "--out=" + os.path.join(wd, "out"),
                                       "--metrics=%d" % n, "--scrapes=%d" % scrapes, labels], cwd=wd)
                    total = int(re.search(r"total samples: (\d+)", out).group(1))
                    if total != n * scrapes:
                        raise RuntimeError("promtool ingested %d samples, expected %d" % (total, n * scrapes))
                    theirs.append(total / cpu)
                    shutil.rmtree(wd)
        self.row("append, samples per CPU-second, whole process (%d series x %d scrapes)" % (n, scrapes),
                 "%.2f M" % (med(ours) / 1e6), "%.2f M" % (med(theirs) / 1e6),
                 "%.1fx" % (med(ours) / med(theirs)))
        self.notes.append("append: sitrep %s M samples/CPU-s (its append loop alone: %s M); promtool %s M"
                          % (fmt_runs(ours, 1e6), fmt_runs(own_loop, 1e6), fmt_runs(theirs, 1e6)))

    # ---- head -------------------------------------------------------------
    def head(self):
        k = self.a.head_samples
        edir = self.path("expose")
        run([self.tool, "expose", self.a.corpus, str(k), edir])
        files = sorted(os.path.join(edir, f) for f in os.listdir(edir))
        ours, ours_rss, theirs, theirs_alloc, theirs_rss, series = [], [], [], [], [], []
        for r in range(self.a.head_runs):
            eport, pport = free_port(), free_port()
            job, inst = "corpus", "127.0.0.1:%d" % eport
            s = kv(run([self.tool, "head", self.a.corpus, str(k), job, inst])[0])
            ours.append(s["heap_per_series"])
            ours_rss.append(s["rss_per_series"])
            p = self.prom_scrape(files, eport, pport, job)
            theirs.append(p["heap_inuse"])
            theirs_alloc.append(p["heap_alloc"])
            theirs_rss.append(p["rss"])
            series.append((int(s["series"]), int(p["series"])))
            log("head run %d: sitrep %s, prometheus %s" % (r, s, p))
        full = kv(run([self.tool, "head", self.a.corpus, str(int(self.info["ticks"])), "corpus", "127.0.0.1:1"])[0])
        self.row("head memory per series after %d samples each: allocator in use (sitrep) vs Go heap in use "
                 "after GC (Prometheus)" % k, "%.0f B" % med(ours), "%.0f B" % med(theirs),
                 "%.2f" % (med(ours) / med(theirs)))
        self.row("head memory per series after %d samples each: RSS growth" % k, "%.0f B" % med(ours_rss),
                 "%.0f B" % med(theirs_rss), "%.2f" % (med(ours_rss) / med(theirs_rss)))
        self.row("head memory per series after all %d ticks of the corpus (%d series; sitrep only: "
                 "Prometheus would need as many seconds of scraping)" % (self.info["ticks"], full["series"]),
                 "%.0f B" % full["heap_per_series"], "", "")
        self.notes.append("head: series in head (sitrep, Prometheus) %s; sitrep heap %s B/series, RSS %s; "
                          "Prometheus heap in use %s B/series, heap alloc %s, RSS %s"
                          % (series, fmt_runs(ours), fmt_runs(ours_rss), fmt_runs(theirs),
                             fmt_runs(theirs_alloc), fmt_runs(theirs_rss)))

    def prom_scrape(self, files, eport, pport, job):
        """Prometheus scraping `files` once a second; bytes per series it grew by."""
        d = self.path("prom-head")
        os.makedirs(d)
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: %s\n    honor_labels: true\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % (job, eport))
        srv = Exposition(eport, files)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        base = "http://127.0.0.1:%d" % pport
        prom = None
        try:
            prom = Server([PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
                           "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"],
                          base + "/-/ready", os.path.join(self.tmp, "prometheus-head.log"))
            time.sleep(8)  # a few scrapes of the empty target: scrape loop, up & co. exist
            m0 = prom_memory(base)
            with srv.lock:
                srv.armed = True
            deadline = time.monotonic() + len(files) * 2 + 60
            while srv.served < len(files) and time.monotonic() < deadline:
                time.sleep(0.2)
            if srv.served < len(files):
                raise RuntimeError("Prometheus scraped %d of %d expositions" % (srv.served, len(files)))
            # The last scrape's append takes milliseconds; the next scrape
            # (same values again) is a second away.
            time.sleep(0.4)
            m1 = prom_memory(base)
        finally:
            if prom:
                prom.stop()
            srv.shutdown()
            srv.server_close()
            shutil.rmtree(d)
        n = m1["series"] - m0["series"]
        return {"heap_inuse": (m1["heap_inuse"] - m0["heap_inuse"]) / n,
                "heap_alloc": (m1["heap_alloc"] - m0["heap_alloc"]) / n,
                "rss": (m1["rss"] - m0["rss"]) / n, "series": n, "chunks": m1["chunks"],
                "scrapes_served": srv.served}

    # ---- read -------------------------------------------------------------
    def read(self):
        store = self.path("sitrep-all", "tsdb")
        pdir = self.path("prom-all")
        if not os.path.isdir(store) or not os.path.isdir(pdir):
            raise RuntimeError("read needs the disk section's 'all' stores")
        end_ms = int(self.info["last_ms"])
        end_s = end_ms / 1000
        reps = self.a.reps
        q1h = urllib.parse.quote("%s[1h]" % SELECTOR)
        exp = "match[]=%s&start=%.3f&end=%.3f" % (urllib.parse.quote(SELECTOR), end_s - 3600, end_s)
        res = {k: [] for k in ("dec", "sel", "sel_first", "p_dec", "p_sel", "p_http", "p_first",
                               "s_http", "s_first", "s_query")}
        counts = {}
        for r in range(self.a.runs):
            s = kv(run([self.tool, "read", store, SELECTOR, str(end_ms), str(reps)])[0])
            res["dec"].append(s["decode_samples_per_cpu_s"])
            res["sel"].append(s["sel_ms_median"])
            counts["sitrep in-process"] = (int(s["sel_series"]), int(s["sel_samples"]))
            counts["sitrep all samples"] = int(s["all_samples"])

            # Prometheus over the promtool blocks (a fresh copy: it may compact them).
            pcopy = self.path("prom-read")
            shutil.copytree(pdir, pcopy)
            cfg = self.path("prom-read.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1m\n")
            port = free_port()
            base = "http://127.0.0.1:%d" % port
            prom = Server([PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + pcopy,
                           "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn",
                           "--storage.tsdb.retention.time=10y"],
                          base + "/-/ready", self.path("prometheus-read.log"))
            try:
                url = "%s/api/v1/query?query=%s&time=%.3f&stats=all" % (base, q1h, end_s)
                body, t = http_get(url)
                res["p_first"].append(t * 1e3)
                walls, inner = [], []
                for _ in range(reps):
                    body, t = http_get(url)
                    walls.append(t * 1e3)
                    d = json.loads(body)
                    inner.append(d["data"]["stats"]["timings"]["evalTotalTime"] * 1e3)
                res["p_http"].append(med(walls))
                res["p_sel"].append(med(inner))
                counts["Prometheus HTTP"] = (len(d["data"]["result"]),
                                             sum(len(x["values"]) for x in d["data"]["result"]), len(body))
                # count_over_time drops the name, so one query per metric name
                # (series of two names would collide); engine time summed.
                names = json.loads(http_get(base + "/api/v1/label/__name__/values")[0])["data"]
                decs = []
                for _ in range(reps):
                    total, secs = 0, 0.0
                    for name in names:
                        q = urllib.parse.quote("count_over_time(%s[2h])" % name)
                        d = json.loads(http_get("%s/api/v1/query?query=%s&time=%.3f&stats=all"
                                                % (base, q, end_s))[0])
                        total += d["data"]["stats"]["samples"]["totalQueryableSamples"]
                        secs += d["data"]["stats"]["timings"]["evalTotalTime"]
                    decs.append(total / secs)
                res["p_dec"].append(med(decs))
                counts["Prometheus all samples"] = total
            finally:
                prom.stop()
                shutil.rmtree(pcopy)

            # sitrep serve over a copy of the store (DATA/tsdb).
            data = self.path("serve-data")
            shutil.copytree(store, os.path.join(data, "tsdb"))
            port = free_port()
            base = "http://127.0.0.1:%d" % port
            srv = Server([os.path.join(self.a.build, "sitrep"), "serve", "--listen", "127.0.0.1:%d" % port,
                          "--data", data, "--log-level", "warn"], base + "/-/ready",
                         self.path("sitrep-serve.log"))
            try:
                url = "%s/api/v1/export?%s" % (base, exp)
                body, t = http_get(url)
                res["s_first"].append(t * 1e3)
                walls = []
                for _ in range(reps):
                    body, t = http_get(url)
                    walls.append(t * 1e3)
                lines = body.decode().splitlines()
                counts["sitrep export"] = (len(lines), sum(len(json.loads(x)["values"]) for x in lines), len(body))
                res["s_http"].append(med(walls))
                # The very request sent to Prometheus, if this build's PromQL API answers it.
                try:
                    url = "%s/api/v1/query?query=%s&time=%.3f" % (base, q1h, end_s)
                    body, t = http_get(url)
                    walls = []
                    for _ in range(reps):
                        body, t = http_get(url)
                        walls.append(t * 1e3)
                    d = json.loads(body)
                    counts["sitrep query"] = (len(d["data"]["result"]),
                                              sum(len(x["values"]) for x in d["data"]["result"]), len(body))
                    res["s_query"].append(med(walls))
                except (OSError, KeyError, ValueError) as e:
                    log("sitrep /api/v1/query: %s" % e)
            finally:
                srv.stop()
                shutil.rmtree(data)
        self.row("decode, samples per second of CPU: every sample of the store (sitrep tsdb_query) vs "
                 "PromQL engine time (evalTotalTime) of count_over_time(name[2h]) for every name (Prometheus)",
                 "%.1f M" % (med(res["dec"]) / 1e6), "%.1f M" % (med(res["p_dec"]) / 1e6),
                 "%.1fx" % (med(res["dec"]) / med(res["p_dec"])))
        self.row("read 1 h of 1,000 series in process: tsdb_query (sitrep) vs PromQL evalTotalTime of "
                 "`sel[1h]` (Prometheus), ms", "%.1f" % med(res["sel"]), "%.1f" % med(res["p_sel"]),
                 "%.2f" % (med(res["sel"]) / med(res["p_sel"])))
        self.row("read 1 h of 1,000 series over HTTP, whole response: /api/v1/export (sitrep serve) vs "
                 "/api/v1/query `sel[1h]` (Prometheus), ms", "%.0f" % med(res["s_http"]),
                 "%.0f" % med(res["p_http"]), "%.2f" % (med(res["s_http"]) / med(res["p_http"])))
        if res["s_query"]:
            self.row("read 1 h of 1,000 series over HTTP, the same request to both: /api/v1/query `sel[1h]`, ms",
                     "%.0f" % med(res["s_query"]), "%.0f" % med(res["p_http"]),
                     "%.2f" % (med(res["s_query"]) / med(res["p_http"])))
        self.notes.append("read: sitrep /api/v1/query %s ms (same request as Prometheus')"
                          % (fmt_runs(res["s_query"]) or "not served by this build"))
        self.notes.append("read: sitrep decode %s M samples/CPU-s, Prometheus engine %s M; in process "
                          "sitrep %s ms, Prometheus %s ms; HTTP sitrep %s ms (first after start %s), "
                          "Prometheus %s ms (first %s); series, samples (and bytes) returned: %s"
                          % (fmt_runs(res["dec"], 1e6), fmt_runs(res["p_dec"], 1e6), fmt_runs(res["sel"]),
                             fmt_runs(res["p_sel"]), fmt_runs(res["s_http"]), fmt_runs(res["s_first"]),
                             fmt_runs(res["p_http"]), fmt_runs(res["p_first"]), counts))

    def report(self):
        print("Command: `%s`, %s, corpus %s (%d recorded + %d synthetic series, %d ticks at 1 s, "
              "%.1f M samples)\n" % (" ".join(sys.argv), time.strftime("%Y-%m-%d %H:%M"), self.a.corpus,
                                     self.info["recorded_series"], self.info["synthetic_series"],
                                     self.info["ticks"], self.info["samples"] / 1e6))
        print("| measure | sitrep | Prometheus 2.42 | ratio (sitrep / Prometheus) |")
        print("|---|---|---|---|")
        for r in self.rows:
            print("| %s | %s | %s | %s |" % r)
        print()
        print("Per-run figures (medians of %d repetitions inside each run where it applies):\n" % self.a.reps)
        for n in self.notes:
            print("- " + n)


def fmt_runs(xs, scale=1):
    return ", ".join(("%.2f" if scale != 1 else "%.1f") % (x / scale) for x in xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.environ.get("TSDB_CORPUS"), help="record_corpus file (env TSDB_CORPUS)")
    ap.add_argument("--build", default="build", help="build directory with tsdb_corpus, tsdb_bench, sitrep")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 5)))
    ap.add_argument("--head-runs", type=int, default=3, help="runs of the head section (each takes K s)")
    ap.add_argument("--head-samples", type=int, default=180, help="K: samples per series before measuring")
    # promtool tsdb bench write's own default: the run length its authors
    # chose, long enough that opening and closing a store (series creation,
    # the final checkpoint) are not what is measured.
    ap.add_argument("--scrapes", type=int, default=3000, help="scrapes of the append section")
    ap.add_argument("--reps", type=int, default=5, help="queries per run in the read section")
    ap.add_argument("--parts", default="all,host", help="corpora of the disk section: all, host, syn")
    ap.add_argument("--sections", default="disk,append,head,read")
    ap.add_argument("--tmp", default=None, help="where the scratch directory goes (default $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    a = ap.parse_args()
    if not a.corpus or not os.path.exists(a.corpus):
        sys.exit("no corpus: pass --corpus or set TSDB_CORPUS (make one with build/record_corpus)")
    for exe in (PROMETHEUS, PROMTOOL):
        if not os.access(exe, os.X_OK):
            sys.exit("%s not found (apt-get install prometheus)" % exe)
    sections = a.sections.split(",")
    if "read" in sections and "all" not in a.parts.split(","):
        a.parts += ",all"
    b = Bench(a)
    try:
        for sec in ("disk", "append", "head", "read"):
            if sec in sections:
                log("== %s" % sec)
                getattr(b, sec)()
        b.report()
    finally:
        for s in list(Server.live):
            s.stop()
        if not a.keep:
            shutil.rmtree(b.tmp, ignore_errors=True)
        else:
            log("scratch kept in %s" % b.tmp)


if __name__ == "__main__":
    main()
