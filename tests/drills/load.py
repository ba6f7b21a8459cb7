"""load.py: HTTP clients for the drills, from chosen loopback addresses.

Steady: each client sends requests at a fixed rate from its own source
address in 127.0.0.0/8 (so the access log shows many clients, as behind no
proxy). Burst: one address fires n requests at once and retries every 503
immediately (the partner sync of the incident). Every client records each
answer's status and time, for the drill's own view of what users saw.
"""
import http.client
import threading
import time


def request(port, path, source, timeout=30):
    """(status, seconds) of one GET from source; status 0 if it failed."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                       source_address=(source, 0))
        c.request("GET", path, headers={"User-Agent": "drill/1"})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.time() - t0
    except OSError:
        return 0, time.time() - t0


class Steady:
    """Clients at `rate` requests/s in total, spread over `sources` addresses."""

    def __init__(self, port, paths, sources, rate, concurrency=4):
        self.port, self.paths, self.sources = port, paths, sources
        self.interval = concurrency / float(rate)
        self.stop_ev = threading.Event()
        self.results = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(concurrency)]
        for t in self.threads:
            t.start()

    def _run(self, k):
        i = k
        next_t = time.time() + k * self.interval / len(self.threads)
        while not self.stop_ev.is_set():
            path = self.paths[i % len(self.paths)]
            src = self.sources[i % len(self.sources)]
            i += len(self.threads)
            st, dt = request(self.port, path, src)
            with self.lock:
                self.results.append((time.time(), st, dt))
            next_t += self.interval
            self.stop_ev.wait(max(0.0, next_t - time.time()))
            if next_t < time.time() - 5:  # far behind (a slow service): do not pile up
                next_t = time.time()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)

    def since(self, t0):
        with self.lock:
            return [r for r in self.results if r[0] >= t0]


def burst(port, path, source, n, retries, threads=64):
    """n requests from source at once, each retried on 503 up to `retries` times."""
    out = []
    lock = threading.Lock()
    todo = list(range(n))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            for _ in range(retries + 1):
                st, _ = request(port, path, source, timeout=10)
                with lock:
                    out.append(st)
                if st != 503:
                    break

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return out


def addresses(first, n):
    """n loopback addresses 127.0.<first>.1 .. (all routed to lo on Linux)."""
    return ["127.0.%d.%d" % (first + i // 250, 1 + i % 250) for i in range(n)]
