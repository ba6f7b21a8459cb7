"""harness.py: what every incident drill needs (tests/drills/README.md).

A drill reproduces an incident's mechanism for real on this machine and
asserts what sitrep noticed, when, and what it said. This module owns the
moving parts a drill shares with the others:

- Drill: a temp dir, free loopback ports, child processes started in their
  own process groups, and a stack of cleanups run on exit, on an exception
  and on SIGINT/SIGTERM, so an interrupted drill leaves nothing behind.
- Sitrep: `sitrep serve` on loopback with built-in defaults plus only what a
  user would write for the drill's services (logs, probes, queues), and an
  `alerting:` route to a local webhook sink.
- Sink: that webhook receiver (Alertmanager's webhook JSON), recording when
  each notification arrived.
- Watch: polls sitrep's /api/v1/alerts, recording when each alert was first
  seen pending and firing (and resolved), so a drill can wait for one and
  report its detection delay.
- CPUMeter: the machine's CPU time split once a second (busy, idle, and
  what the hypervisor took: steal), so a drill can tell an alert about its
  own load from one about a host that was starved from outside.
- Netdata (full-length drills only): Debian's netdata with its stock health
  configuration on loopback, polled through /api/v1/alarms, for the side by
  side table in docs/DRILLS.md.

Times are time.time() seconds. Nothing here knows any drill's numbers.
"""
import glob
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class DrillFailed(Exception):
    """An expectation did not hold: the message says which and what was seen."""


class Skip(Exception):
    """The drill cannot run here (the message says why)."""


class Inconclusive(Skip):
    """The host could not give the drill a fair run (its CPU was taken by the
    hypervisor or it was saturated before the onset): the message says what
    was measured. run.py tries such a drill once more before skipping it."""


def free_port(taken=set()):
    """A loopback TCP port nobody listens on, never the same one twice."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in taken:
            taken.add(port)
            return port


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_until(fn, timeout, what, interval=0.2):
    """Poll fn() until it returns something true; that value, or DrillFailed."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(interval)
    raise DrillFailed("timed out after %.0f s waiting for %s%s"
                      % (timeout, what, " (last error: %s)" % last if last else ""))


def web_service(drill, name, *args):
    """Start tests/drills/websvc.py as service `name`; (port, access log path, `logs:` entry)."""
    port = free_port()
    log = drill.path("%s.log" % name)
    open(log, "w").close()
    drill.spawn([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "websvc.py"),
                 "--port", str(port), "--log", log] + list(args), name=name)
    wait_until(lambda: http_get("http://127.0.0.1:%d/health" % port)[0] == 200, 10, name)
    entry = ("  - {service: %s, path: '%s', format: combined, request_time: seconds,"
             " start_at: beginning}\n" % (name, log))
    return port, log, entry


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * 1024
    return out


class Drill:
    """One drill's resources; use as a context manager."""

    def __init__(self, name, short=True, sitrep_bin=None, keep=False):
        self.name = name
        self.short = short
        self.sitrep_bin = os.path.abspath(sitrep_bin or os.path.join(SRC, "build", "sitrep"))
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="sitrep-drill-%s-" % name)
        self.procs = []
        self.cleanups = []
        self.log = []
        self._old = {}
        self.cpu = None

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._on_signal)
        self.cpu = CPUMeter(self)
        return self

    def __exit__(self, *exc):
        self.cleanup()
        for sig, h in self._old.items():
            signal.signal(sig, h)
        return False

    def _on_signal(self, sig, frame):
        self.cleanup()
        raise KeyboardInterrupt("drill %s interrupted by signal %d" % (self.name, sig))

    def note(self, msg):
        self.log.append("%.1f %s" % (time.time(), msg))

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def spawn(self, argv, name=None, env=None, **kw):
        """Start a child in its own process group; stopped at cleanup."""
        logf = open(self.path("%s.log" % (name or os.path.basename(argv[0]))), "ab")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                             env=dict(os.environ, **(env or {})), **kw)
        logf.close()
        p.drill_name = name or argv[0]
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def at_exit(self, fn):
        self.cleanups.append(fn)

    def cleanup(self):
        while self.cleanups:
            fn = self.cleanups.pop()
            try:
                fn()
            except Exception as e:  # cleanup must go on
                print("drill %s: cleanup step failed: %s" % (self.name, e), file=sys.stderr)
        while self.procs:
            self.stop(self.procs.pop())
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, name, n=30):
        try:
            with open(self.path("%s.log" % name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class CPUMeter:
    """/proc/stat's first line once a second, in a thread: cumulative
    (time, all, idle + iowait, steal) jiffies, from which any window's shares
    follow. Steal is time the hypervisor gave this VM's CPUs to someone else:
    tasks that were ready waited, so a CPU alert then is true, but says
    nothing about whether the drill's own load was judged right."""

    def __init__(self, drill, period=1.0):
        self.samples = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.period = period
        self._sample()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        drill.at_exit(self.close)

    def _sample(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        v += [0] * (8 - len(v))
        # user nice system idle iowait irq softirq steal (guest is inside user)
        row = (time.time(), sum(v[:8]), v[3] + v[4], v[7])
        with self.lock:
            self.samples.append(row)

    def _run(self):
        while not self.stop_ev.wait(self.period):
            try:
                self._sample()
            except OSError:
                pass

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)

    def shares(self, t0, t1):
        """{"busy", "steal"}: shares of all CPU time in [t0, t1] (None if unmeasured)."""
        with self.lock:
            got = [s for s in self.samples if t0 - self.period <= s[0] <= t1 + self.period]
        if len(got) < 2 or got[-1][1] == got[0][1]:
            return None
        a, b = got[0], got[-1]
        total = float(b[1] - a[1])
        return {"busy": 1 - (b[2] - a[2]) / total, "steal": (b[3] - a[3]) / total}

    def worst_steal(self, t0, t1, window=15):
        """The largest steal share over any `window` seconds within [t0, t1]."""
        worst, t = 0.0, t0
        while t + window <= t1 + 0.5:
            sh = self.shares(t, t + window)
            if sh:
                worst = max(worst, sh["steal"])
            t += 1
        return worst


class Sink:
    """A webhook receiver; each POST body is kept with its arrival time."""

    def __init__(self, drill):
        self.received = []
        self.lock = threading.Lock()
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    msg = json.loads(body)
                except ValueError:
                    msg = {"unparsed": body.decode("utf-8", "replace")}
                with sink.lock:
                    sink.received.append((time.time(), msg))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        drill.at_exit(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def first(self, alertname, status="firing", since=0.0, wait=0.0):
        """(time, alert dict, message) of the first notification holding that
        alert, from `since` on; waits up to `wait` seconds for one to arrive
        (it may come just after the alert is seen firing)."""
        end = time.time() + wait
        while True:
            with self.lock:
                got = list(self.received)
            for t, msg in got:
                if t < since:
                    continue
                for a in msg.get("alerts", []):
                    if (a.get("labels", {}).get("alertname") == alertname
                            and a.get("status") == status):
                        return t, a, msg
            if time.time() >= end:
                return None
            time.sleep(0.2)

    def messages(self, alertname=None):
        with self.lock:
            got = list(self.received)
        if alertname is None:
            return got
        return [(t, m) for t, m in got
                if any(a.get("labels", {}).get("alertname") == alertname for a in m.get("alerts", []))]


class Sitrep:
    """sitrep serve on loopback with defaults plus the drill's sections."""

    def __init__(self, drill, sink, sections="", rule_interval=None):
        self.drill = drill
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        cfg = drill.path("sitrep.yml")
        with open(cfg, "w") as f:
            f.write(self.config(sink, sections))
        self.cfg = cfg
        self.proc = None

    def config(self, sink, sections):
        pack = builtin_pack_flag(self.drill.sitrep_bin)
        text = ""
        if not pack:
            # A binary without the built-in pack: load the repository's files.
            text += "rule_files: [%s]\n" % ", ".join(
                "'%s'" % p for p in sorted(glob.glob(os.path.join(SRC, "rules", "*.yml"))))
        text += (
            "alerting:\n"
            "  route:\n"
            "    receiver: drill\n"
            "    group_by: [alertname, service]\n"
            "    group_wait: 0s\n"
            "    group_interval: 5s\n"
            "    repeat_interval: 4h\n"
            "  receivers:\n"
            "    - name: drill\n"
            "      webhook_configs:\n"
            "        - url: %s\n" % sink.url())
        return text + sections

    def start(self):
        self.proc = self.drill.spawn([self.drill.sitrep_bin, "serve", "--config", self.cfg,
                                      "--data", self.drill.path("data"),
                                      "--listen", "127.0.0.1:%d" % self.port], name="sitrep")
        try:
            wait_until(lambda: http_get(self.url + "/-/healthy")[0] == 200, 20, "sitrep to start")
        except DrillFailed:
            raise DrillFailed("sitrep did not start: %s" % self.drill.tail("sitrep"))
        return self

    def query(self, expr, t=None):
        params = {"query": expr}
        if t is not None:
            params["time"] = "%.3f" % t
        _, body = http_get(self.url + "/api/v1/query?" + urllib.parse.urlencode(params), 30)
        d = json.loads(body)
        if d.get("status") != "success":
            raise DrillFailed("query %r failed: %s" % (expr, d))
        return d["data"]["result"]

    def value(self, expr):
        r = self.query(expr)
        return float(r[0]["value"][1]) if r else None

    def alerts(self):
        _, body = http_get(self.url + "/api/v1/alerts", 10)
        return json.loads(body)["data"]["alerts"]


def builtin_pack_flag(binary):
    """True if this sitrep loads its default rule pack without any rule_files."""
    try:
        r = subprocess.run([binary, "check", "rules", "--builtin"], capture_output=True, timeout=30)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Watch:
    """Polls /api/v1/alerts in a thread; first pending/firing time per alert."""

    def __init__(self, drill, sitrep, period=0.5):
        self.sitrep = sitrep
        self.period = period
        self.first_pending = {}
        self.first_firing = {}
        self.last_seen = {}
        self.seen = {}  # key -> the alert as last seen
        self.history = {}  # key -> [(time, "pending" | "firing" | "inactive")] on change
        self.state = {}
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        drill.at_exit(self.close)

    @staticmethod
    def key(a):
        return a["labels"].get("alertname")

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                now = time.time()
                alerts = self.sitrep.alerts()
                with self.lock:
                    now_state = {}
                    for a in alerts:
                        k = self.key(a)
                        st = a.get("state")
                        if now_state.get(k) != "firing":
                            now_state[k] = st
                    for k in set(now_state) | set(self.state):
                        st = now_state.get(k, "inactive")
                        if self.state.get(k, "inactive") != st:
                            self.history.setdefault(k, []).append((now, st))
                        self.state[k] = st
                    for a in alerts:
                        k = self.key(a)
                        self.seen.setdefault(k, []).append(a)
                        if len(self.seen[k]) > 50:
                            del self.seen[k][:-50]
                        self.last_seen[k] = now
                        if a.get("state") == "pending":
                            self.first_pending.setdefault(k, now)
                        if a.get("state") == "firing":
                            self.first_pending.setdefault(k, now)
                            self.first_firing.setdefault(k, now)
            except (OSError, urllib.error.URLError, ValueError, KeyError):
                pass
            self.stop_ev.wait(self.period)

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)

    def firing_now(self):
        try:
            return sorted({self.key(a) for a in self.sitrep.alerts() if a.get("state") == "firing"})
        except (OSError, urllib.error.URLError, ValueError):
            return []

    def all_fired(self):
        with self.lock:
            return dict(self.first_firing)

    def firing_since(self, name, t):
        """When the alert next went to firing at or after t (None if it did not,
        also when it was already firing at t: that is no new detection)."""
        with self.lock:
            hist = list(self.history.get(name, []))
        return next((at for at, st in hist if st == "firing" and at >= t), None)

    def state_at(self, name, t):
        with self.lock:
            hist = list(self.history.get(name, []))
        st = "inactive"
        for at, s in hist:
            if at > t:
                break
            st = s
        return st

    def wait_firing(self, name, timeout, since):
        """Wait for the alert to go to firing at or after `since` (the onset)."""
        return wait_until(lambda: self.firing_since(name, since), timeout,
                          "alert %s to fire" % name, 0.25)

    def transitions(self, name):
        with self.lock:
            return list(self.history.get(name, []))

    def instances(self, name):
        with self.lock:
            return list(self.seen.get(name, []))


# Netdata alarms about this machine rather than any drill: the container has
# no NTP, so the clock sync alarm is raised in every run.
IGNORED_NETDATA = ("system.clock_sync_state",)


class Netdata:
    """Debian's netdata, stock health config, on loopback (full drills only)."""

    def __init__(self, drill):
        if not shutil.which("netdata"):
            raise Skip("netdata is not installed (scripts/deps.sh drills installs it)")
        self.drill = drill
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.first = {}
        d = drill.path("netdata")
        for sub in ("cache", "lib", "log", "run"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        conf = os.path.join(d, "netdata.conf")
        with open(conf, "w") as f:
            f.write("[global]\n  run as user = root\n"
                    "[directories]\n  cache = %s/cache\n  lib = %s/lib\n  log = %s/log\n"
                    "  run = %s/run\n"
                    "[web]\n  bind to = 127.0.0.1:%d\n"
                    "[cloud]\n  enabled = no\n" % (d, d, d, d, self.port))
        self.proc = drill.spawn(["netdata", "-D", "-c", conf], name="netdata")
        wait_until(lambda: http_get(self.url + "/api/v1/info")[0] == 200, 60, "netdata to start")
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        drill.at_exit(self.close)

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                _, body = http_get(self.url + "/api/v1/alarms?active", 10)
                now = time.time()
                for name, a in json.loads(body).get("alarms", {}).items():
                    if name.startswith(IGNORED_NETDATA):
                        continue
                    if a.get("status") in ("WARNING", "CRITICAL"):
                        self.first.setdefault(name, (now, a.get("status"), a.get("info", "")))
            except (OSError, urllib.error.URLError, ValueError):
                pass
            self.stop_ev.wait(1)

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)


# The hypervisor's share of all CPU time, over some 15 s, above which a drill
# cannot judge a CPU alert: this VM idles at a few percent and has been seen
# losing half its CPU for seconds at a time; sitrep's CPU and latency alerts
# need the box near saturation (under a tenth idle) for 10 s or more.
STEAL_LIMIT = 0.25


def wait_quiet(drill, watch, alerts, most=120):
    """Before an onset: wait until none of `alerts` is pending or firing and the
    hypervisor took under STEAL_LIMIT of the CPU over the last 15 s. The host
    is too busy to start the incident on when that does not come within `most`
    seconds: Inconclusive, with what was measured."""
    end = time.time() + most
    while True:
        now = time.time()
        why = ["%s %s" % (a, watch.state_at(a, now)) for a in alerts
               if watch.state_at(a, now) != "inactive"]
        sh = drill.cpu.shares(now - 15, now) or {"busy": 0.0, "steal": 0.0}
        if sh["steal"] >= STEAL_LIMIT:
            why.append("the hypervisor taking the CPU")
        if not why:
            return
        if now >= end:
            raise Inconclusive(
                "the host was too busy to start the incident on: after %.0f s of waiting, still"
                " %s; over the last 15 s the CPUs were %.0f%% busy, %.0f%% of their time taken"
                " by the hypervisor (steal)"
                % (most, " and ".join(why), 100 * sh["busy"], 100 * sh["steal"]))
        time.sleep(1)


def judge_firings(drill, watch, since):
    """Every time an alert went to firing from `since` on, split by whether the
    hypervisor took at least STEAL_LIMIT of the CPU in some 15 s of the minute
    before it (then the alert told the truth about a starved host, and a drill
    cannot say whether its own load was judged right): (unexcused names,
    ["name (steal N%)" excused])."""
    with watch.lock:
        hist = {k: list(v) for k, v in watch.history.items()}
    unexcused, excused = set(), []
    for name, changes in sorted(hist.items()):
        for at, st in changes:
            if st != "firing" or at < since:
                continue
            steal = drill.cpu.worst_steal(at - 60, at)
            if steal >= STEAL_LIMIT:
                excused.append("%s (steal up to %.0f%% before it fired)" % (name, 100 * steal))
            else:
                unexcused.add(name)
    return sorted(unexcused), excused


def result(drill, onset, expectations, sink, watch, netdata=None, notes=None):
    """The record a drill returns: per expected alert, onset and delays."""
    rows = []
    for e in expectations:
        # The first firing from the onset on; one already under way at the
        # onset is no detection (the box was not quiet).
        fired = watch.firing_since(e["alert"], onset)
        note = sink.first(e["alert"], since=onset, wait=10 if fired else 0) if sink else None
        rows.append({
            "alert": e["alert"],
            "deadline_s": e["within"],
            "firing_at": fired,
            "delay_s": None if fired is None else round(fired - onset, 1),
            "notified_delay_s": None if note is None else round(note[0] - onset, 1),
            "cause_named": e.get("cause_named"),
            "ok": e.get("ok", fired is not None and 0 <= fired - onset <= e["within"]),
        })
    nd = None
    if netdata is not None:
        hits = sorted((t, n, s) for n, (t, s, _) in netdata.first.items() if t >= onset)
        nd = {"first": None if not hits else {"alarm": hits[0][1], "status": hits[0][2],
                                               "delay_s": round(hits[0][0] - onset, 1)},
              "alarms": [h[1] for h in hits]}
    return {"drill": drill.name, "short": drill.short, "onset": onset, "rows": rows,
            "other_alerts": sorted(set(watch.all_fired()) - {e["alert"] for e in expectations}),
            "netdata": nd, "notes": notes or []}
