"""baseline.py, drill 8: busy but healthy; nothing may fire.

A service with steady traffic from many clients (ordinary 404s among them)
and CPU bursts that stay under half the machine, for ten minutes (three in
the short form). Expect: no alert at all. This is the false-alarm half of
every other drill: a pack that caught everything by paging on anything
would fail here.

The drill's own load stays near a quarter of the machine. An alert that
fired while the hypervisor was taking a quarter or more of the CPU (steal)
told the truth about a starved host; it is listed, and if every alert of the
run was of that kind the run is inconclusive (tried again, then skipped with
the figures), never passed.
"""
import sys
import time

from harness import Inconclusive, Sink, Sitrep, Watch, judge_firings, result, web_service
from load import Steady, addresses

NAME = "baseline"
TITLE = "Busy but healthy (no alert expected)"

BURST = r"""
import sys, time
on, off = float(sys.argv[1]), float(sys.argv[2])
while True:
    t = time.time() + on
    while time.time() < t:
        pass
    time.sleep(off)
"""


def run(d, netdata=None):
    port, log, entry = web_service(d, "web", "--max-inflight", "64")
    sink = Sink(d)
    s = Sitrep(d, sink, "logs:\n" + entry +
               "probes:\n  - {name: web, url: 'http://127.0.0.1:%d/health', interval: 5s}\n"
               % port).start()
    w = Watch(d, s)
    onset = time.time()
    clients = Steady(port, ["/sleep?s=0.01", "/work?mb=2", "/missing/page", "/sleep?s=0.05"],
                     addresses(1, 60), rate=20, concurrency=4)
    d.at_exit(clients.stop)
    # CPU bursts: one core busy 2 s of every 5 (under half of the machine's CPU on average).
    d.spawn([sys.executable, "-c", BURST, "2", "3"], name="bursts")
    time.sleep(180 if d.short else 600)
    fired = sorted(w.all_fired())
    unexcused, excused = judge_firings(d, w, onset)
    sh = d.cpu.shares(onset, time.time()) or {"busy": 0.0, "steal": 0.0}
    r = result(d, onset, [], sink, w, netdata,
               ["%d requests served; CPUs %.0f%% busy, %.0f%% taken by the hypervisor;"
                " alerts that fired: %s"
                % (len(clients.since(onset)), 100 * sh["busy"], 100 * sh["steal"],
                   ", ".join(fired) or "none")]
               + (["fired while the host was starved: %s" % "; ".join(excused)] if excused else []))
    if fired and not unexcused:
        raise Inconclusive("every alert fired while the hypervisor took the CPU: %s"
                           % "; ".join(excused))
    r["forbid_others"] = True
    r["rows"].append({"alert": "(no alert at all)", "deadline_s": None, "firing_at": None,
                      "delay_s": None, "notified_delay_s": None, "cause_named": None,
                      "ok": not fired})
    return r
