#!/usr/bin/env python3
"""accesslog_vs_goaccess.py: access-log ingestion, sitrep against GoAccess.

Generates one Combined Log Format file (1,000,000 lines by default, fixed
seed: many clients with a few heavy ones, ids and query strings in paths,
static assets, scanners, a mix of statuses), then in the same run and on the
same file, alternating, runs:

  - build/ingest_bench FILE combined: sitrep's real reader, parser and
    aggregates (src/ingest) over the whole file on one thread;
  - goaccess FILE --log-format=COMBINED --process-and-exit: GoAccess parses
    and aggregates the file and exits without writing a report (its
    cheapest mode, so the comparison favours it).

Each process is measured from outside the same way (os.wait4: user + system
CPU and wall time; peak RSS as VmHWM from /proc); lines per CPU second is
the per-core rate. The
median of --runs runs is reported, with every run's figures. Markdown goes
to stdout (bench/run.sh tees it into bench/out/accesslog.md).

If build/ingest_bench is missing (it is not a CMake target yet), it is
compiled from bench/ingest_bench.c against build/libsitrep_lib.a.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "curl/7.88.1",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "kube-probe/1.28",
    "okhttp/4.12.0",
]
SCANS = ["/wp-login.php", "/.env", "/admin/config.php", "/phpmyadmin/index.php",
         "/.git/config", "/cgi-bin/test.cgi", "/xmlrpc.php", "/vendor/phpunit/eval-stdin.php"]
WORDS = ["shoes", "red+dress", "laptop", "coffee", "books", "garden", "bike", "phone+case"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def generate(path, n, seed=1):
    """n combined-format lines, deterministic for a seed."""
    rnd = random.Random(seed)
    clients = ["%d.%d.%d.%d" % (rnd.randint(1, 223), rnd.randint(0, 255), rnd.randint(0, 255),
                                rnd.randint(1, 254)) for _ in range(20000)]
    # A few heavy clients (load balancer health checks, a busy API client, a scraper).
    heavy = clients[:5]
    t0 = 1_790_000_000
    with open(path, "w") as f:
        for i in range(n):
            ts = time.gmtime(t0 + i // 100)
            stamp = "%02d/%s/%d:%02d:%02d:%02d +0000" % (
                ts.tm_mday, MONTHS[ts.tm_mon - 1], ts.tm_year, ts.tm_hour, ts.tm_min, ts.tm_sec)
            ip = rnd.choice(heavy) if rnd.random() < 0.3 else clients[int(rnd.paretovariate(1.2)) % len(clients)]
            r = rnd.random()
            method, status = "GET", 200
            if r < 0.25:
                path = "/api/v1/users/%d" % rnd.randint(1, 500000)
                if rnd.random() < 0.1:
                    method = rnd.choice(["PUT", "DELETE", "PATCH"])
            elif r < 0.40:
                path = "/api/v1/orders/%d/items?page=%d" % (rnd.randint(1, 10**7), rnd.randint(1, 20))
                if rnd.random() < 0.2:
                    method = "POST"
            elif r < 0.55:
                path = "/static/js/app.%08x.js" % rnd.getrandbits(32)
                status = 304 if rnd.random() < 0.3 else 200
            elif r < 0.65:
                path = "/static/css/site.css?v=%d" % rnd.randint(1, 50)
                status = 304 if rnd.random() < 0.3 else 200
            elif r < 0.70:
                path = "/health"
            elif r < 0.75:
                path, method = "/login", "POST"
                status = 302 if rnd.random() < 0.8 else 401
            elif r < 0.85:
                path = "/search?q=%s&page=%d" % (rnd.choice(WORDS), rnd.randint(1, 9))
            elif r < 0.95:
                path = "/products/%08x-%04x-%04x-%04x-%012x" % (
                    rnd.getrandbits(32), rnd.getrandbits(16), rnd.getrandbits(16),
                    rnd.getrandbits(16), rnd.getrandbits(48))
            else:
                path, status = rnd.choice(SCANS), 404
            e = rnd.random()
            if status == 200 and e < 0.01:
                status = 500
            elif status == 200 and e < 0.02:
                status = 503
            elif status == 200 and e < 0.025:
                status = 429
            size = 0 if status in (304, 302) else rnd.randint(100, 60000)
            ref = "-" if rnd.random() < 0.5 else "https://shop.example.com/products?cat=%d" % rnd.randint(1, 40)
            f.write('%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n' % (
                ip, stamp, method, path, status, size, ref, rnd.choice(UAS)))


def vm_hwm_kib(pid):
    """The process's peak RSS so far (VmHWM, KiB), or 0 once it has exited."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd, want_stdout=False):
    """Run cmd; (user+sys CPU s, wall s, peak RSS KiB, stdout text or None).

    Peak RSS is VmHWM polled every 2 ms (a high-water mark, so only growth in
    the last 2 ms before exit can be missed), not wait4's ru_maxrss: with
    Python's vfork that also counts this script's own memory from before exec.
    """
    out_file = tempfile.TemporaryFile(mode="w+") if want_stdout else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out_file, stderr=subprocess.DEVNULL)
    hwm = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        hwm = max(hwm, vm_hwm_kib(p.pid))
        time.sleep(0.002)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    p.returncode = code
    if code != 0:
        sys.exit("%s: exit status %d" % (cmd[0], code))
    out = None
    if want_stdout:
        out_file.seek(0)
        out = out_file.read()
        out_file.close()
    return ru.ru_utime + ru.ru_stime, wall, hwm, out


def ensure_bench(build):
    exe = os.path.join(build, "ingest_bench")
    if os.path.exists(exe):
        return exe
    lib = os.path.join(build, "libsitrep_lib.a")
    if not os.path.exists(lib):
        sys.exit("no %s: build sitrep first (make build)" % lib)
    cc = os.environ.get("CC", "cc")
    subprocess.check_call([cc, "-O2", "-g", "-std=c11", "-D_GNU_SOURCE", "-I", os.path.join(ROOT, "src"),
                           os.path.join(ROOT, "bench", "ingest_bench.c"), lib, "-lpcre2-8", "-lyaml",
                           "-lmicrohttpd", "-lpthread", "-lm", "-o", exe])
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--file", help="use this combined-format file instead of generating one")
    args = ap.parse_args()
    goaccess = shutil.which("goaccess")
    if not goaccess:
        sys.exit("goaccess not installed (scripts/deps.sh bench installs it)")
    bench = ensure_bench(args.build)
    tmp = tempfile.mkdtemp(prefix="sitrep-accesslog-bench-")
    try:
        path = args.file
        if not path:
            path = os.path.join(tmp, "access.log")
            generate(path, args.lines)
        size = os.path.getsize(path)
        with open(path, "rb") as f:  # into the page cache for both
            while f.read(1 << 20):
                pass
        version = subprocess.run([goaccess, "--version"], capture_output=True, text=True).stdout
        version = version.split("\n")[0].strip()
        s_runs, g_runs = [], []
        for i in range(args.runs):
            order = ["s", "g"] if i % 2 == 0 else ["g", "s"]
            for who in order:
                if who == "s":
                    cpu, wall, rss, out = measure([bench, path, "combined"], want_stdout=True)
                    j = json.loads(out)
                    # its own VmHWM is exact; the poll may miss the last 2 ms
                    s_runs.append({"cpu": cpu, "wall": wall, "rss": max(rss, j["maxrss_kib"]),
                                   "lines": j["lines"], "requests": j["requests"],
                                   "inner_cpu": j["cpu_s"]})
                else:
                    cpu, wall, rss, _ = measure([goaccess, path, "--log-format=COMBINED",
                                                 "--no-global-config", "--process-and-exit",
                                                 "--no-progress"])
                    g_runs.append({"cpu": cpu, "wall": wall, "rss": rss})
        lines = s_runs[0]["lines"]
        if any(r["requests"] != lines for r in s_runs):
            sys.exit("sitrep counted %s requests of %s lines" % (s_runs[0]["requests"], lines))
        med = lambda runs, k: statistics.median(r[k] for r in runs)
        s_cpu, g_cpu = med(s_runs, "cpu"), med(g_runs, "cpu")
        s_wall, g_wall = med(s_runs, "wall"), med(g_runs, "wall")
        s_rss, g_rss = med(s_runs, "rss") / 1024, med(g_runs, "rss") / 1024
        s_inner = med(s_runs, "inner_cpu")
        print("## Access logs: sitrep vs %s\n" % version)
        print("%d combined-format lines (%.0f MB), median of %d runs each, alternating.\n"
              % (lines, size / 1e6, args.runs))
        print("| measure | sitrep | GoAccess | ratio (sitrep / GoAccess) |")
        print("|---|---|---|---|")
        print("| lines per CPU second (one core) | %.0f | %.0f | %.1fx |"
              % (lines / s_cpu, lines / g_cpu, g_cpu / s_cpu))
        print("| lines per wall second | %.0f | %.0f | %.1fx |"
              % (lines / s_wall, lines / g_wall, g_wall / s_wall))
        print("| CPU seconds (user + system, whole process) | %.3f | %.3f | %.3f |"
              % (s_cpu, g_cpu, s_cpu / g_cpu))
        print("| peak RSS | %.1f MiB | %.1f MiB | %.3f |" % (s_rss, g_rss, s_rss / g_rss))
        print("| sitrep's reading thread alone (CPU s, lines/s) | %.3f s, %.0f/s | | |"
              % (s_inner, lines / s_inner))
        print()
        print("Per run, CPU seconds: sitrep %s; GoAccess %s." % (
            ", ".join("%.3f" % r["cpu"] for r in s_runs), ", ".join("%.3f" % r["cpu"] for r in g_runs)))
        print("Per run, peak RSS MiB: sitrep %s; GoAccess %s." % (
            ", ".join("%.1f" % (r["rss"] / 1024) for r in s_runs),
            ", ".join("%.1f" % (r["rss"] / 1024) for r in g_runs)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
