"""dentry.py, drill 2: a per-request worker bloats the dentry cache.

The incident: a C web app created and deleted uniquely named temp files per
request until the kernel's dentry cache held 4 million entries and memory
ran short. Here worker processes create and delete uniquely named files as
fast as they can; each deleted name leaves a negative dentry. Expect: the
cache-growth alert within 60 s, naming the cache and how fast it grows. The
drill drops the caches it bloated when it ends.
"""
import os
import sys
import time

from harness import Sink, Sitrep, Watch, result

NAME = "dentry"
TITLE = "Dentry cache bloat from unique temp files"
ALERT = "DentryCacheGrowing"

WORKER = r"""
import ctypes, os, sys
ctypes.CDLL(None).prctl(15, b"tmpfile-worker", 0, 0, 0)
d, k = sys.argv[1], sys.argv[2]
i = 0
while True:
    p = "%s/req-%s-%d.tmp" % (d, k, i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.unlink(p)
    i += 1
"""


def dentries():
    with open("/proc/sys/fs/dentry-state") as f:
        return int(f.read().split()[0])


def run(d, netdata=None):
    sink = Sink(d)
    s = Sitrep(d, sink, "").start()
    w = Watch(d, s)
    time.sleep(15 if d.short else 60)
    tmp = d.path("tmp")
    os.makedirs(tmp)
    before = dentries()
    onset = time.time()
    workers = [d.spawn([sys.executable, "-c", WORKER, tmp, str(i)], name="worker-%d" % i)
               for i in range(2)]

    def drop():
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("2\n")
        except OSError:
            pass
    d.at_exit(drop)
    try:
        w.wait_firing(ALERT, 75, onset)
    except Exception:
        pass
    finally:
        for p in workers:
            d.stop(p)
    after = dentries()
    fired = w.firing_since(ALERT, onset)
    note = sink.first(ALERT, since=onset, wait=10 if fired else 0)
    text = "" if note is None else str(note[1].get("annotations", {}).get("summary", ""))
    named = None if note is None else ("entr" in text.lower() and "/s" in text)
    return result(d, onset, [{"alert": ALERT, "within": 60, "cause_named": named}], sink, w, netdata,
                  ["dentries %d -> %d (%.0f/s); notification: %s"
                   % (before, after, (after - before) / max(1.0, (fired or time.time()) - onset),
                      text or "none")])
